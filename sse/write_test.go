package sse

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote \" back \\ slash", "ctl \x00\x01\n\r\t\x1f", "caf\u00e9 \u65e5\u672c \U0001F600", "<html> & \u2028\u2029", "bad \xff\xfe utf8"} {
		b := AppendJSONString([]byte("x"), s)
		if b[0] != 'x' {
			t.Fatalf("%q: prefix lost", s)
		}
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, b[1:], err)
		}
		if want := string([]rune(s)); got != want { // each invalid byte becomes U+FFFD
			t.Fatalf("round trip of %q = %q, want %q", s, got, want)
		}
		if bytes.ContainsAny(b[1:], "\u2028\u2029\n") {
			t.Fatalf("%q: line separators left raw in %q", s, b[1:])
		}
	}
}
