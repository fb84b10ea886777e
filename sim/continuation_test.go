package sim

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// cutPoints picks prefill lengths that exercise the edges: inside a token
// right after a multi-byte rune, at a boundary between two multi-byte
// tokens, mid-ASCII-token, and at a plain token boundary.
func cutPoints(t *testing.T, toks []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	off := 0
	for i, tok := range toks {
		if _, ok := out["after multi-byte rune inside a token"]; !ok {
			for j, r := range tok {
				if r >= utf8.RuneSelf && j+utf8.RuneLen(r) < len(tok) {
					out["after multi-byte rune inside a token"] = off + j + utf8.RuneLen(r)
					break
				}
			}
		}
		if i > 0 && tok[0] >= utf8.RuneSelf && toks[i-1][len(toks[i-1])-1] >= utf8.RuneSelf {
			if _, ok := out["between multi-byte tokens"]; !ok {
				out["between multi-byte tokens"] = off
			}
		}
		if len(tok) > 3 && tok[1] < utf8.RuneSelf && tok[2] < utf8.RuneSelf && tok[1] != ' ' && tok[2] != ' ' {
			if _, ok := out["mid ascii token"]; !ok {
				out["mid ascii token"] = off + 2
			}
		}
		if i == len(toks)/2 {
			out["token boundary"] = off
		}
		off += len(tok)
	}
	if len(out) != 4 {
		t.Fatalf("answer lacks some cut kinds: %v", out)
	}
	return out
}

func TestPrefillContinuationOverHTTP(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	g := s.Generator()
	prompt := "[sim:tokens=400] a long essay"
	full := g.Answer(conv(prompt))
	text := strings.Join(full, "")
	for name, p := range cutPoints(t, full) {
		prefill := strings.TrimRightFunc(text[:p], unicode.IsSpace)
		rest := text[len(prefill):]
		wantTokens := len(g.Reply(Conversation{Messages: []Message{{Role: "user", Text: prompt}, {Role: "assistant", Text: prefill}}}, true))
		body, _ := json.Marshal(map[string]any{
			"model": "claude-sonnet-4-5", "max_tokens": 1000, "stream": true,
			"messages": []map[string]any{{"role": "user", "content": prompt}, {"role": "assistant", "content": prefill}},
		})
		t.Run(name, func(t *testing.T) {
			w := serve(s, anthropicReq("/v1/messages", "k", string(body)))
			evs := parseSSE(t, w.Body.Bytes())
			got, complete := anthropicText(t, evs)
			if !complete || got != rest {
				t.Fatalf("continuation %q\nwant %q", got, rest)
			}
			if !strings.Contains(evs[len(evs)-2].data, `"output_tokens":`+itoa(wantTokens)+`}`) {
				t.Fatalf("usage %s, want %d output tokens", evs[len(evs)-2].data, wantTokens)
			}
			if prefill+got != text {
				t.Fatal("prefill + continuation != full answer")
			}
		})
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func TestNoPrefillModelsAndTheContinueForm(t *testing.T) {
	cfg := fastConfig()
	cfg.NoPrefillModels = []string{"claude-opus-4-6*", "strict-*"}
	s := New(cfg)
	defer s.Close()
	g := s.Generator()
	prompt := "[sim:tokens=60] explain"
	text := g.Text(conv(prompt))
	partial := text[:len(text)/3]
	for !utf8.ValidString(partial) {
		partial = partial[:len(partial)-1]
	}
	mk := func(model string, msgs ...map[string]any) string {
		b, _ := json.Marshal(map[string]any{"model": model, "max_tokens": 1000, "messages": msgs})
		return string(b)
	}
	user := map[string]any{"role": "user", "content": prompt}
	asst := map[string]any{"role": "assistant", "content": strings.TrimRightFunc(partial, unicode.IsSpace)}
	for _, model := range []string{"claude-opus-4-6", "claude-opus-4-6-20260101", "strict-model"} {
		t.Run(model, func(t *testing.T) {
			w := serve(s, anthropicReq("/v1/messages", "k", mk(model, user, asst)))
			e := decode[anthropicErr](t, w.Body.Bytes())
			if w.Code != 400 || e.Error.Type != "invalid_request_error" || e.Error.Message != "This model does not support assistant message prefill. The conversation must end with a user message." {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
	t.Run("prefill accepted elsewhere", func(t *testing.T) {
		if w := serve(s, anthropicReq("/v1/messages", "k", mk("claude-sonnet-4-5", user, asst))); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("user continue form on a no-prefill model", func(t *testing.T) {
		full := map[string]any{"role": "assistant", "content": partial}
		cont := map[string]any{"role": "user", "content": "Your answer was cut off. Continue exactly where it stopped."}
		w := serve(s, anthropicReq("/v1/messages", "k", mk("claude-opus-4-6", user, full, cont)))
		var m struct {
			Content []struct{ Text string } `json:"content"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 || len(m.Content) != 1 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if m.Content[0].Text != text[len(partial):] {
			t.Fatalf("got %q, want %q", m.Content[0].Text, text[len(partial):])
		}
	})
	t.Run("openai continue form", func(t *testing.T) {
		b, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": []map[string]any{
			{"role": "user", "content": prompt}, {"role": "assistant", "content": partial}, {"role": "user", "content": "continue"},
		}})
		w := serve(s, openAIReq("k", string(b)))
		var c struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || len(c.Choices) != 1 || c.Choices[0].Message.Content != text[len(partial):] {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
