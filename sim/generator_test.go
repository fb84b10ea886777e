package sim

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func conv(prompt string) Conversation {
	return Conversation{Messages: []Message{{Role: "user", Text: prompt}}}
}

func TestAnswerIsDeterministic(t *testing.T) {
	g := Generator{Seed: 7}
	c := Conversation{System: "sys", Messages: []Message{{Role: "user", Text: "Tell me about buckets."}}}
	a, b := g.Text(c), g.Text(c)
	if a != b {
		t.Fatal("same conversation gave different answers")
	}
	if other := (Generator{Seed: 8}).Text(c); other == a {
		t.Fatal("a different seed gave the same answer")
	}
	c2 := Conversation{System: "sys", Messages: []Message{{Role: "user", Text: "Tell me about buckets!"}}}
	if g.Text(c2) == a {
		t.Fatal("a different prompt gave the same answer")
	}
	// Fields are length-prefixed: moving text between system and message
	// changes the answer.
	c3 := Conversation{System: "sysT", Messages: []Message{{Role: "user", Text: "ell me about buckets."}}}
	if g.Text(c3) == a {
		t.Fatal("re-split conversation collided")
	}
}

func TestAnswerLengthVariesWithinBounds(t *testing.T) {
	g := Generator{MinOutputTokens: 10, MaxOutputTokens: 60}
	seen := map[int]bool{}
	for i := range 200 {
		toks := g.Answer(conv(fmt.Sprintf("prompt %d", i)))
		if len(toks) < 10 || len(toks) > 60 {
			t.Fatalf("prompt %d: %d tokens outside [10,60]", i, len(toks))
		}
		if n := g.Length(conv(fmt.Sprintf("prompt %d", i))); n != len(toks) {
			t.Fatalf("Length = %d, Answer has %d tokens", n, len(toks))
		}
		seen[len(toks)] = true
	}
	if len(seen) < 20 {
		t.Fatalf("only %d distinct lengths over 200 prompts", len(seen))
	}
}

func TestDirectiveFixesLength(t *testing.T) {
	g := Generator{}
	tests := []struct {
		name string
		c    Conversation
		want int // 0: not fixed by a directive
	}{
		{"in user message", conv("write [sim:tokens=37] please"), 37},
		{"in system", Conversation{System: "[sim:tokens=5]", Messages: []Message{{Role: "user", Text: "x"}}}, 5},
		{"last wins", Conversation{System: "[sim:tokens=5]", Messages: []Message{{Role: "user", Text: "[sim:tokens=9] [sim:tokens=11]"}}}, 11},
		{"one token", conv("[sim:tokens=1]"), 1},
		{"large", conv("[sim:tokens=5000]"), 5000},
		{"zero ignored", conv("[sim:tokens=0]"), 0},
		{"too large ignored", conv("[sim:tokens=2000000]"), 0},
		{"garbage ignored", conv("[sim:tokens=abc]"), 0},
		{"unterminated ignored", conv("[sim:tokens=12"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(g.Answer(tt.c))
			if tt.want > 0 && n != tt.want {
				t.Fatalf("got %d tokens, want %d", n, tt.want)
			}
			if tt.want == 0 && (n < defaultMinOutput || n > defaultMaxOutput) {
				t.Fatalf("got %d tokens, want the default range", n)
			}
		})
	}
}

func TestAnswerTextExercisesContinuationEdges(t *testing.T) {
	g := Generator{}
	var all strings.Builder
	var wsOnly, endsWS, multiRune, cjkAdjacent bool
	for i := range 30 {
		toks := g.Answer(conv(fmt.Sprintf("[sim:tokens=300] topic %d", i)))
		for j, tok := range toks {
			if tok == "" || !utf8.ValidString(tok) {
				t.Fatalf("token %d %q empty or invalid UTF-8", j, tok)
			}
			if strings.TrimSpace(tok) == "" {
				wsOnly = true
			} else if r, _ := utf8.DecodeLastRuneInString(tok); unicode.IsSpace(r) {
				endsWS = true
			}
			if utf8.RuneCountInString(tok) > 1 && len(tok) > utf8.RuneCountInString(tok) {
				multiRune = true
			}
			if j > 0 && tok[0] >= utf8.RuneSelf && toks[j-1][len(toks[j-1])-1] >= utf8.RuneSelf {
				cjkAdjacent = true
			}
			all.WriteString(tok)
		}
		if toks[0] != strings.TrimLeft(toks[0], " \n") {
			t.Fatalf("answer %d starts with whitespace: %q", i, toks[0])
		}
	}
	text := all.String()
	checks := []struct {
		name string
		ok   bool
	}{
		{"accented letter", strings.ContainsAny(text, "éïüçÅâèñœ")},
		{"CJK", strings.ContainsAny(text, "東京数据流水山雨光時間")},
		{"emoji above U+FFFF", strings.ContainsFunc(text, func(r rune) bool { return r > 0xFFFF })},
		{"newline", strings.Contains(text, "\n")},
		{"paragraph break", strings.Contains(text, "\n\n")},
		{"whitespace-only token", wsOnly},
		{"token ending in whitespace", endsWS},
		{"multi-byte rune inside a longer token", multiRune},
		{"multi-byte runes meeting at a token edge", cjkAdjacent},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("answers lack: %s", c.name)
		}
	}
}

// runeBoundaries returns every byte offset of text at a rune boundary.
func runeBoundaries(text string) []int {
	var out []int
	for i := range text {
		out = append(out, i)
	}
	return append(out, len(text))
}

func TestReplyPrefillContinuesExactly(t *testing.T) {
	g := Generator{Seed: 3}
	base := Conversation{System: "s", Messages: []Message{{Role: "user", Text: "[sim:tokens=120] explain"}}}
	full := g.Answer(base)
	text := strings.Join(full, "")
	for _, p := range runeBoundaries(text) {
		c := Conversation{System: base.System, Messages: append(append([]Message{}, base.Messages...), Message{Role: "assistant", Text: text[:p]})}
		got := g.Reply(c, true)
		if strings.Join(got, "") != text[p:] {
			t.Fatalf("prefill of %d bytes: reply %q, want %q", p, strings.Join(got, ""), text[p:])
		}
		// The reply has one token per remaining (possibly partial) token.
		off, want := 0, 0
		for _, tok := range full {
			if off+len(tok) > p {
				want++
			}
			off += len(tok)
		}
		if len(got) != want {
			t.Fatalf("prefill of %d bytes: %d tokens, want %d", p, len(got), want)
		}
	}
}

func TestReplyRules(t *testing.T) {
	g := Generator{}
	q := Message{Role: "user", Text: "[sim:tokens=40] a question"}
	text := g.Text(Conversation{Messages: []Message{q}})
	half := text[:len(text)/2]
	for !utf8.ValidString(half) {
		half = half[:len(half)-1]
	}
	tests := []struct {
		name    string
		msgs    []Message
		prefill bool
		want    string // "" means: the answer to the whole conversation
	}{
		{"no prefill", []Message{q}, false, text},
		{"prefill prefix", []Message{q, {Role: "assistant", Text: half}}, true, text[len(half):]},
		{"prefill not a prefix", []Message{q, {Role: "assistant", Text: "Something else"}}, true, ""},
		{"final assistant without prefill (OpenAI)", []Message{q, {Role: "assistant", Text: half}}, false, ""},
		{"user continue", []Message{q, {Role: "assistant", Text: half}, {Role: "user", Text: "Please continue from where you stopped."}}, false, text[len(half):]},
		{"user continue any case", []Message{q, {Role: "assistant", Text: half}, {Role: "user", Text: "CONTINUE"}}, true, text[len(half):]},
		{"user continue with trailing space kept", []Message{q, {Role: "assistant", Text: text[:strings.Index(text, " ")+1]}, {Role: "user", Text: "continue"}}, false, text[strings.Index(text, " ")+1:]},
		{"user message without continue", []Message{q, {Role: "assistant", Text: half}, {Role: "user", Text: "go on"}}, false, ""},
		{"continue after a non-prefix", []Message{q, {Role: "assistant", Text: "nope"}, {Role: "user", Text: "continue"}}, false, ""},
		{"prefill equals whole answer", []Message{q, {Role: "assistant", Text: text}}, true, "<empty>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Conversation{Messages: tt.msgs}
			got := strings.Join(g.Reply(c, tt.prefill), "")
			want := tt.want
			switch want {
			case "":
				want = g.Text(c)
			case "<empty>":
				want = ""
			}
			if got != want {
				t.Fatalf("reply %q, want %q", got, want)
			}
		})
	}
}

func FuzzReplyContinuation(f *testing.F) {
	f.Add(uint64(1), "hello", uint(10))
	f.Add(uint64(2), "東京 [sim:tokens=50]", uint(3))
	f.Add(uint64(3), "", uint(0))
	f.Fuzz(func(t *testing.T, seed uint64, prompt string, cut uint) {
		g := Generator{Seed: seed, MinOutputTokens: 1, MaxOutputTokens: 80}
		base := conv(prompt)
		text := g.Text(base)
		p := int(cut % uint(len(text)+1))
		for p > 0 && !utf8.RuneStart(text[p%len(text)]) && p < len(text) {
			p--
		}
		prefill := Conversation{Messages: []Message{base.Messages[0], {Role: "assistant", Text: text[:p]}}}
		if got := strings.Join(g.Reply(prefill, true), ""); got != text[p:] {
			t.Fatalf("prefill at %d: got %q, want %q", p, got, text[p:])
		}
		cont := Conversation{Messages: []Message{base.Messages[0], {Role: "assistant", Text: text[:p]}, {Role: "user", Text: "continue"}}}
		if got := strings.Join(g.Reply(cont, false), ""); got != text[p:] {
			t.Fatalf("continue at %d: got %q, want %q", p, got, text[p:])
		}
	})
}
