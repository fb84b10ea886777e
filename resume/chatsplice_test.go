package resume

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/sse"
)

const openaiBody = `{"model":"gpt-4o","max_completion_tokens":2048,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me a story."}]}`

// verifyChat checks that a spliced chat stream reads, for the streamgate
// stream model and for openai-go's accumulator, as one complete completion
// with the whole text and, with usage, the summed usage.
func verifyChat(t *testing.T, label string, out []byte, full string, withUsage bool, wantPrompt, wantCompletion int64) {
	t.Helper()
	evs := parseWire(t, out)
	var done, finishes, usages int
	for _, e := range evs {
		d := string(e.Data)
		switch {
		case d == "[DONE]":
			done++
		case strings.Contains(d, `"finish_reason":"`):
			finishes++
		}
		if strings.Contains(d, `"usage":{`) {
			usages++
		}
	}
	wantUsages := 0
	if withUsage {
		wantUsages = 1
	}
	if done != 1 || finishes != 1 || usages != wantUsages {
		t.Errorf("%s: %d [DONE], %d finish_reason, %d usage chunks; want 1, 1, %d", label, done, finishes, usages, wantUsages)
	}
	cs := observeChat(evs)
	if v := cs.End(); v.Status != sse.Complete {
		t.Errorf("%s: verdict %v (%s), want complete", label, v.Status, v.Reason)
		return
	}
	if cs.Text() != full {
		t.Errorf("%s: text %q, want %q", label, cs.Text(), full)
	}
	if ch := cs.Choices(); len(ch) != 1 || ch[0].Role != "assistant" {
		t.Errorf("%s: choices %+v, want one assistant choice", label, ch)
	}
	acc, err := sdkChat(evs)
	if err != nil {
		t.Errorf("%s: openai-go rejects the stream: %v", label, err)
		return
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != full || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("%s: SDK completion %+v, want the full text and finish_reason stop", label, acc.Choices)
	}
	if acc.ID != "chatcmpl-orig" || acc.Model != "gpt-4o-2024-08-06" || acc.Created != 1700000000 {
		t.Errorf("%s: SDK id %q model %q created %d, want the original's", label, acc.ID, acc.Model, acc.Created)
	}
	if withUsage {
		u := acc.Usage
		if u.PromptTokens != wantPrompt || u.CompletionTokens != wantCompletion || u.TotalTokens != wantPrompt+wantCompletion {
			t.Errorf("%s: SDK usage %d/%d/%d, want %d/%d/%d", label, u.PromptTokens, u.CompletionTokens, u.TotalTokens,
				wantPrompt, wantCompletion, wantPrompt+wantCompletion)
		}
	}
}

func TestChatSpliceEveryCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for ti, full := range spliceTexts {
		for _, form := range []Form{UserContinue, Prefill} {
			for _, withUsage := range []bool{true, false} {
				t.Run(fmt.Sprintf("text%d/%s/usage=%v", ti, form, withUsage), func(t *testing.T) {
					deltas := splitText(full, rng, 3)
					for k := 0; k <= len(deltas); k++ {
						checkChatResume(t, full, deltas, k, form, withUsage, rng)
					}
				})
			}
		}
	}
}

// checkChatResume cuts a chat stream of full (sent as deltas) after k
// deltas, resumes it as a model would answer, and checks the spliced
// stream.
func checkChatResume(t *testing.T, full string, deltas []string, k int, form Form, withUsage bool, rng *rand.Rand) {
	t.Helper()
	label := fmt.Sprintf("cut after %d/%d deltas", k, len(deltas))
	orig := chatStream{id: "chatcmpl-orig", model: "gpt-4o-2024-08-06", created: 1700000000, prompt: 90, deltas: deltas, usage: withUsage}
	prefix := orig.events()[:1+k]
	cs := observeChat(prefix)
	cs.Interrupt("connection dropped")
	received := cs.Text()
	c, err := OpenAI([]byte(openaiBody), received, int64(k), form)
	if received == "" {
		if !errors.Is(err, ErrNothingToResume) {
			t.Errorf("%s: err = %v, want ErrNothingToResume", label, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: OpenAI: %v", label, err)
	}
	if ok, why := ResumableChat(cs); !ok {
		t.Fatalf("%s: not resumable: %s", label, why)
	}
	rest := full[len(received)-len(c.Strip):]
	cont := chatStream{id: "chatcmpl-cont", model: "gpt-4o-2024-08-06-b", created: 1700000099, prompt: 130,
		deltas: splitText(rest, rng, 4), usage: withUsage}
	cont.output = int64(len(cont.deltas))
	o := OriginFromChat(cs, c.Strip, int64(k), 90)
	o.Created = 1700000000
	sp := NewChatSplicer(o)
	out := wire(prefix)
	for _, e := range cont.events() {
		if out, err = sp.Splice(out, e); err != nil {
			t.Fatalf("%s: Splice: %v", label, err)
		}
	}
	verifyChat(t, label, out, full, withUsage, 90+130, int64(k)+cont.output)
}

func TestChatSpliceRepeatedInterruptions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for ti, full := range spliceTexts {
		t.Run(fmt.Sprintf("text%d", ti), func(t *testing.T) {
			orig := chatStream{id: "chatcmpl-orig", model: "gpt-4o-2024-08-06", created: 1700000000, deltas: splitText(full, rng, 2), usage: true}
			for k := 1; k <= len(orig.deltas); k++ {
				prefix := orig.events()[:1+k]
				cs := observeChat(prefix)
				out := wire(prefix)
				o := OriginFromChat(cs, "", int64(k), 50)
				o.Created = 1700000000
				prompts := int64(50)
				for attempt := 0; ; attempt++ {
					label := fmt.Sprintf("cut after %d, attempt %d", k, attempt)
					c, err := OpenAI([]byte(openaiBody), o.Text, o.Output, UserContinue)
					if err != nil {
						t.Fatalf("%s: %v", label, err)
					}
					o.Strip = c.Strip
					rest := full[len(o.Text):]
					cont := chatStream{id: fmt.Sprintf("chatcmpl-%d", attempt), model: "gpt-4o", created: 1, prompt: 60, deltas: splitText(rest, rng, 3), usage: true}
					cont.output = int64(len(cont.deltas))
					evs := cont.events()
					last := attempt == 2 || len(cont.deltas) == 0
					if last {
						// An interrupted continuation never reported its
						// prompt tokens; only the last one's are known.
						prompts += 60
					}
					if !last {
						j := rng.IntN(len(cont.deltas) + 1)
						evs = append(evs[:1+j:1+j], ev("", `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`))
					}
					sp := NewChatSplicer(o)
					for _, e := range evs {
						before := len(out)
						if out, err = sp.Splice(out, e); err != nil {
							var ce *ContinuationError
							if !errors.As(err, &ce) || ce.Code != "rate_limit_exceeded" || len(out) != before {
								t.Fatalf("%s: Splice error %v (wrote %d bytes), want the rate limit ContinuationError", label, err, len(out)-before)
							}
							break
						}
					}
					next := sp.Next()
					if last {
						verifyChat(t, label, out, full, true, prompts, next.Output)
						break
					}
					if caller := observeChat(parseWire(t, out)); next.Text != caller.Text() {
						t.Fatalf("%s: Next().Text %q, caller has %q", label, next.Text, caller.Text())
					}
					if ok, why := sp.Resumable(); !ok {
						t.Fatalf("%s: not resumable: %s", label, why)
					}
					o = next
				}
			}
		})
	}
}

func TestChatSpliceChunks(t *testing.T) {
	o := Origin{ID: "chatcmpl-o", Model: "gpt-4o", Created: 42, Output: 10, Input: 20, Strip: " "}
	tests := []struct {
		name string
		in   string
		want string // "" means dropped
	}{
		{
			name: "role-only first chunk dropped",
			in:   `{"id":"c","object":"chat.completion.chunk","created":7,"model":"gpt-4o-x","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`,
		},
		{
			name: "strip, rewrite id, created and model, keep the rest",
			in:   `{"id":"c","object":"chat.completion.chunk","created":7,"model":"gpt-4o-x","system_fingerprint":"fp_2","choices":[{"index":0,"delta":{"content":" next"},"logprobs":null,"finish_reason":null}],"obfuscation":"abc"}`,
			want: `{"id":"chatcmpl-o","object":"chat.completion.chunk","created":42,"model":"gpt-4o","system_fingerprint":"fp_2","choices":[{"index":0,"delta":{"content":"next"},"logprobs":null,"finish_reason":null}],"obfuscation":"abc"}`,
		},
		{
			name: "role with content keeps the content",
			in:   `{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
			want: `{"id":"chatcmpl-o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`,
		},
		{
			name: "finish_reason chunk kept",
			in:   `{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`,
			want: `{"id":"chatcmpl-o","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`,
		},
		{
			name: "usage summed",
			in:   `{"id":"c","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35,"completion_tokens_details":{"reasoning_tokens":0}}}`,
			want: `{"id":"chatcmpl-o","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":15,"total_tokens":65,"completion_tokens_details":{"reasoning_tokens":0}}}`,
		},
		{
			name: "an id is added when missing",
			in:   `{"choices":[{"delta":{"content":"x"}}]}`,
			want: `{"choices":[{"delta":{"content":"x"}}],"id":"chatcmpl-o"}`,
		},
		{
			name: "logprobs keep a chunk",
			in:   `{"id":"c","choices":[{"index":0,"delta":{"content":""},"logprobs":{"content":[]},"finish_reason":null}]}`,
			want: `{"id":"chatcmpl-o","choices":[{"index":0,"delta":{"content":""},"logprobs":{"content":[]},"finish_reason":null}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := NewChatSplicer(o)
			out, err := sp.Splice(nil, ev("", tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if len(out) != 0 {
					t.Errorf("spliced %q, want the chunk dropped", out)
				}
				return
			}
			got := parseWire(t, out)
			if len(got) != 1 {
				t.Fatalf("spliced %q, want one event", out)
			}
			if string(got[0].Data) != tt.want {
				t.Errorf("spliced\n %s\nwant\n %s", got[0].Data, tt.want)
			}
		})
	}
}

func TestChatSpliceErrorsAndPassThrough(t *testing.T) {
	t.Run("error chunk", func(t *testing.T) {
		sp := NewChatSplicer(Origin{ID: "x"})
		data := `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`
		out, err := sp.Splice(nil, ev("", data))
		var ce *ContinuationError
		if !errors.As(err, &ce) || ce.Type != "server_error" || string(ce.Raw) != data || len(out) != 0 {
			t.Fatalf("Splice = %q, %v; want nothing and a server_error ContinuationError", out, err)
		}
		if !strings.Contains(err.Error(), "server_error") {
			t.Errorf("error %q does not name the type", err)
		}
		if _, err2 := sp.Splice(nil, ev("", "[DONE]")); err2 != err {
			t.Errorf("after the error: %v, want the same error", err2)
		}
	})
	t.Run("malformed chunk", func(t *testing.T) {
		sp := NewChatSplicer(Origin{})
		out, err := sp.Splice(nil, ev("", `{"id":"c","object":"chat.completion.chu`))
		if !errors.Is(err, ErrMalformed) || len(out) != 0 {
			t.Fatalf("Splice = %q, %v; want nothing and ErrMalformed", out, err)
		}
	})
	t.Run("keep-alive and done pass", func(t *testing.T) {
		sp := NewChatSplicer(Origin{ID: "x"})
		for _, e := range []sse.Event{ev("", ""), ev("", `{"id":"c","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`), ev("", "[DONE]")} {
			out, err := sp.Splice(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Data) == 0 || string(e.Data) == "[DONE]" {
				if want := sse.AppendEvent(nil, e.Type, e.Data); string(out) != string(want) {
					t.Errorf("spliced %q, want %q unchanged", out, want)
				}
			}
		}
		if ok, why := sp.Resumable(); ok || !strings.Contains(why, "complete") {
			t.Errorf("after [DONE]: Resumable = %v, %q", ok, why)
		}
	})
	t.Run("tool calls are not resumable", func(t *testing.T) {
		sp := NewChatSplicer(Origin{})
		if _, err := sp.Splice(nil, ev("", `{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{"}}]}}]}`)); err != nil {
			t.Fatal(err)
		}
		if ok, why := sp.Resumable(); ok || !strings.Contains(why, "tool call") {
			t.Errorf("Resumable = %v, %q", ok, why)
		}
	})
}
