// Package fingerprint turns an API key into a stable, non-reversible label
// that can be logged, used as a metrics label or a budget key. streamgate
// never logs, stores or exposes an API key itself; it uses Of(key).
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
)

// Of returns "fp_" followed by the first 12 hex digits of the SHA-256 of key.
// The empty key has the fingerprint "fp_none".
func Of(key string) string {
	if key == "" {
		return "fp_none"
	}
	sum := sha256.Sum256([]byte(key))
	return "fp_" + hex.EncodeToString(sum[:6])
}
