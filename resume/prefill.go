package resume

import (
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
)

// DefaultNoPrefillModels are path.Match patterns of the Anthropic models
// known to reject a final assistant message (Claude 4.6 and later). The
// leading "*" also matches provider-prefixed ids such as
// "us.anthropic.claude-opus-4-6-v1".
var DefaultNoPrefillModels = []string{
	"*claude-opus-4-6*", "*claude-sonnet-4-6*", "*claude-opus-4-7*", "*claude-opus-4-8*",
	"*claude-opus-5*", "*claude-sonnet-5*", "*claude-haiku-5*",
}

// PrefillPolicy decides which continuation Form a model gets: Prefill
// unless the model matches a configured pattern of models that reject
// prefill, or was learned to reject it (Learn, after a 400 that
// IsPrefillRejection recognises).
//
// The zero value accepts prefill for every model until it learns
// otherwise. A PrefillPolicy is safe for concurrent use; it must not be
// copied after first use.
type PrefillPolicy struct {
	mu       sync.RWMutex
	patterns []string
	learned  map[string]struct{}
}

// NewPrefillPolicy returns a policy under which the models matching any
// of rejectPatterns (path.Match syntax, e.g. "claude-opus-4-6*") reject
// prefill. Use DefaultNoPrefillModels for the known models; a malformed
// pattern matches nothing.
func NewPrefillPolicy(rejectPatterns ...string) *PrefillPolicy {
	return &PrefillPolicy{patterns: slices.Clone(rejectPatterns)}
}

// Accepts reports whether model is expected to accept a prefill.
func (p *PrefillPolicy) Accepts(model string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if _, ok := p.learned[model]; ok {
		return false
	}
	for _, pat := range p.patterns {
		if ok, err := path.Match(pat, model); ok && err == nil {
			return false
		}
	}
	return true
}

// Form returns Prefill if model accepts prefill, else UserContinue.
func (p *PrefillPolicy) Form(model string) Form {
	if p.Accepts(model) {
		return Prefill
	}
	return UserContinue
}

// Learn records that model rejects prefill: every later Accepts(model) is
// false.
func (p *PrefillPolicy) Learn(model string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.learned == nil {
		p.learned = make(map[string]struct{})
	}
	p.learned[model] = struct{}{}
}

// Learned returns the models learned to reject prefill, sorted.
func (p *PrefillPolicy) Learned() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.learned))
	for m := range p.learned {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// prefillRejections are lower-case phrases (backticks removed) of the 400
// messages with which the Anthropic API (and gateways in front of it)
// reject a final assistant message. The first is the message Claude 4.6
// and later models send: "This model does not support assistant message
// prefill. The conversation must end with a user message." The last is
// sent when the request enables extended thinking, which prefill does not
// support: "When `thinking` is enabled, a final `assistant` message must
// start with a thinking block ...".
var prefillRejections = []string{
	"does not support assistant message prefill",
	"conversation must end with a user message",
	"prefilling assistant messages is not supported",
	"prefilling assistant messages is no longer supported",
	"prefill is not supported",
	"final assistant content cannot end with trailing whitespace",
	"final assistant message must start with a thinking block",
}

// IsPrefillRejection reports whether a response with this status and body
// rejected a Prefill continuation: an HTTP 400 whose error message says the
// model does not support assistant message prefill, that the final
// assistant content cannot end with trailing white space, or that with
// thinking enabled a final assistant message must start with a thinking
// block. Any of them means the continuation should be sent again as
// UserContinue, and the model learned (PrefillPolicy.Learn; conservative
// for the last two, which depend on the request rather than the model):
// the caller never sees this 400. Anything unparsable is not a rejection.
func IsPrefillRejection(status int, body []byte) bool {
	if status != http.StatusBadRequest {
		return false
	}
	top, ok := parseObject(body)
	if !ok {
		return false
	}
	msg, ok := top.getString("message") // some gateways flatten the error
	if e, isObj := top.getObject("error"); isObj {
		msg, ok = e.getString("message")
	}
	if !ok {
		return false
	}
	msg = strings.ToLower(strings.ReplaceAll(msg, "`", ""))
	for _, phrase := range prefillRejections {
		if strings.Contains(msg, phrase) {
			return true
		}
	}
	return false
}
