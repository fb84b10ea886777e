package sim

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCountTokens(t *testing.T) {
	// Expected values are worked out by hand from the rules in the
	// CountTokens documentation.
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"short word", "hello", 1},
		{"space before word is free", "hello world", 2},
		{"long word", "internationalization", 4}, // 1 + 19/6
		{"accented letter costs extra", "café", 2},
		{"digits in threes", "12345", 2},
		{"punctuation", "a, b.", 4},
		{"cjk", "東京", 2},
		{"emoji above U+FFFF", "🚀", 2},
		{"newlines", "line1\nline2", 5},
		{"newline run", "\n\n\n", 2},
		{"leading spaces", "    x", 2},
		{"trailing spaces", "x   ", 2},
		{"invalid utf-8", "\xff", 1},
		{"tab run", "\t\t", 1},
		{"crlf", "a\r\nb", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CountTokens(tt.in); got != tt.want {
				t.Errorf("CountTokens(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestCountTokensIsNotCharsOverFour(t *testing.T) {
	// A client-side estimator of len/4 must be wrong in both directions on
	// realistic text, or there is nothing to calibrate: CJK costs far more
	// than len/4, long English words far less.
	cjk := strings.Repeat("東京の雨と光。", 20)
	if got, naive := CountTokens(cjk), len(cjk)/4; got < naive*5/4 {
		t.Errorf("CJK: CountTokens = %d, len/4 = %d; want well above", got, naive)
	}
	words := strings.Repeat("internationalization considerations ", 20)
	if got, naive := CountTokens(words), len(words)/4; got > naive*17/20 {
		t.Errorf("long words: CountTokens = %d, len/4 = %d; want well below", got, naive)
	}
}

func TestInputTokens(t *testing.T) {
	c := Conversation{System: "Be brief.", Messages: []Message{{Role: "user", Text: "Hi there"}, {Role: "assistant", Text: "Hello"}, {Role: "user", Text: "More"}}}
	want := CountTokens("Be brief.") + 3*messageOverhead + CountTokens("Hi there") + CountTokens("Hello") + CountTokens("More")
	if got := InputTokens(c); got != want {
		t.Fatalf("InputTokens = %d, want %d", got, want)
	}
}

func FuzzCountTokens(f *testing.F) {
	for _, s := range []string{"", "hello world", "café 東京 🚀", "a\n\nb", "  x  ", "\xff\xfe", "12,345.67"} {
		f.Add(s, "tail text")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		n := CountTokens(a)
		if n < 0 || n > 2*len(a) {
			t.Fatalf("CountTokens(%q) = %d out of [0, 2*len]", a, n)
		}
		if a != "" && n == 0 && strings.TrimLeft(a, " \t") != "" {
			t.Fatalf("CountTokens(%q) = 0 for non-blank text", a)
		}
		newline := func(s string, at func(string) (rune, int)) bool {
			r, _ := at(s)
			return r == '\n' || r == '\r'
		}
		if a == "" || b == "" || newline(a, utf8.DecodeLastRuneInString) || newline(b, utf8.DecodeRuneInString) {
			return
		}
		if got, want := CountTokens(a+"\n"+b), n+1+CountTokens(b); got != want {
			t.Fatalf("CountTokens(a+\"\\n\"+b) = %d, want %d+1+%d", got, n, CountTokens(b))
		}
	})
}
