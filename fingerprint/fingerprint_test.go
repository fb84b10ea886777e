package fingerprint

import (
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	key := "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"
	fp := Of(key)
	if !strings.HasPrefix(fp, "fp_") || len(fp) != 15 {
		t.Fatalf("Of(key) = %q, want fp_ and 12 hex digits", fp)
	}
	if Of(key) != fp {
		t.Fatal("fingerprint is not stable")
	}
	if Of(key+"x") == fp {
		t.Fatal("different keys share a fingerprint")
	}
	for i := 0; i+4 <= len(key); i++ {
		if strings.Contains(fp, key[i:i+4]) {
			t.Fatalf("fingerprint %q contains key fragment %q", fp, key[i:i+4])
		}
	}
	if Of("") != "fp_none" {
		t.Fatalf("Of(\"\") = %q", Of(""))
	}
}
