package sim

import (
	"strings"
)

// Reply returns the tokens the simulator generates for a request whose
// messages are c.Messages, before max_tokens cuts them. prefill says whether
// a final assistant message is a prefill to continue (true on /v1/messages
// for models that accept prefill; false on /v1/chat/completions, where a
// final assistant message is just conversation).
//
// The rules, in order:
//
//  1. Prefill. If prefill is set and the final message is an assistant
//     message with text P, let base be the conversation without it. If P is a
//     prefix of Text(base), the reply is the rest of that answer, starting
//     exactly where P ends: when P ends inside a token, the first token of
//     the reply is the remainder of that token. Otherwise (P is not a prefix)
//     the reply is Answer of the whole conversation, prefill included.
//  2. User continue. If the final message is a user message whose text
//     contains "continue" (any case), the message before it is an assistant
//     message with text A, and A is a prefix of Text(base) where base is the
//     conversation before that assistant message, the reply is the rest of
//     that answer after A, split as in rule 1. (A may end in whitespace: only
//     a final assistant message is subject to the trailing-whitespace rule.)
//  3. Otherwise the reply is Answer(c).
//
// Resuming an interrupted answer therefore yields exactly its missing part,
// by either continuation form, and the output tokens of a continuation
// count only what it generated.
func (g Generator) Reply(c Conversation, prefill bool) []string {
	msgs := c.Messages
	n := len(msgs)
	if prefill && n > 0 && msgs[n-1].Role == "assistant" {
		base := Conversation{System: c.System, Messages: msgs[:n-1]}
		if rest, ok := g.remainder(base, msgs[n-1].Text); ok {
			return rest
		}
		return g.Answer(c)
	}
	if n >= 2 && msgs[n-1].Role == "user" && msgs[n-2].Role == "assistant" &&
		containsFold(msgs[n-1].Text, "continue") {
		base := Conversation{System: c.System, Messages: msgs[:n-2]}
		if rest, ok := g.remainder(base, msgs[n-2].Text); ok {
			return rest
		}
	}
	return g.Answer(c)
}

// remainder returns the tokens of base's answer after the text done, if done
// is a prefix of that answer.
func (g Generator) remainder(base Conversation, done string) ([]string, bool) {
	full := g.Answer(base)
	off := 0
	for i, t := range full {
		if len(done)-off <= len(t) {
			// done ends inside (or at the end of) token i.
			if !strings.HasPrefix(t, done[off:]) {
				return nil, false
			}
			k := len(done) - off
			if k == len(t) {
				return full[i+1:], true
			}
			rest := make([]string, 0, len(full)-i)
			rest = append(rest, t[k:])
			return append(rest, full[i+1:]...), true
		}
		if done[off:off+len(t)] != t {
			return nil, false
		}
		off += len(t)
	}
	// done is longer than the whole answer.
	return nil, off == len(done)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}
