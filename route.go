package streamgate

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/fingerprint"
	"github.com/streamgate/streamgate/ratelimit"
)

// Endpoint is the kind of API call a request is.
type Endpoint uint8

const (
	// PassThrough is any request streamgate does not schedule; it is sent
	// unchanged.
	PassThrough Endpoint = iota
	// AnthropicMessages is POST .../v1/messages.
	AnthropicMessages
	// AnthropicCountTokens is POST .../v1/messages/count_tokens (rate limited
	// separately by the provider; forwarded, headers not applied to the
	// Messages budget).
	AnthropicCountTokens
	// OpenAIChatCompletions is POST .../v1/chat/completions.
	OpenAIChatCompletions
)

// String returns a short name for logs and metrics.
func (e Endpoint) String() string {
	switch e {
	case AnthropicMessages:
		return "anthropic_messages"
	case AnthropicCountTokens:
		return "anthropic_count_tokens"
	case OpenAIChatCompletions:
		return "openai_chat_completions"
	default:
		return "pass_through"
	}
}

// Classify returns the endpoint a request targets, from its method and path.
// Paths may carry a prefix (an OpenAI-compatible base URL such as
// http://host/openai/v1).
func Classify(r *http.Request) Endpoint {
	if r.Method != http.MethodPost {
		return PassThrough
	}
	p := strings.TrimRight(r.URL.Path, "/")
	switch {
	case strings.HasSuffix(p, "/v1/messages"):
		return AnthropicMessages
	case strings.HasSuffix(p, "/v1/messages/count_tokens"):
		return AnthropicCountTokens
	case strings.HasSuffix(p, "/chat/completions"):
		return OpenAIChatCompletions
	}
	return PassThrough
}

func (e Endpoint) provider() ratelimit.Provider {
	switch e {
	case AnthropicMessages, AnthropicCountTokens:
		return ratelimit.Anthropic
	case OpenAIChatCompletions:
		return ratelimit.OpenAI
	}
	return ratelimit.ProviderUnknown
}

func (e Endpoint) api() cost.API {
	if e == OpenAIChatCompletions {
		return cost.ChatCompletions
	}
	return cost.Messages
}

// apiKeyFingerprint returns the fingerprint of the credential a request
// carries: x-api-key (Anthropic) or an Authorization bearer token (OpenAI and
// Anthropic OAuth). The key itself never leaves this function.
func apiKeyFingerprint(h http.Header) string {
	if k := h.Get("X-Api-Key"); k != "" {
		return fingerprint.Of(k)
	}
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return fingerprint.Of(strings.TrimSpace(a[7:]))
	}
	return fingerprint.Of("")
}

var (
	claudeFamily = regexp.MustCompile(`^claude-(?:(\d+)(?:-\d+)?-(opus|sonnet|haiku)|(opus|sonnet|haiku)-(\d+))`)
	dateSuffix   = regexp.MustCompile(`-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$`)
)

// DefaultModelClass maps a model name to the class its rate limits are
// shared by. Anthropic limits Claude models per family and major version
// ("claude-sonnet-4-5-20250929" and "claude-sonnet-4-0" share
// "claude-sonnet-4"); for other models the class is the name without a date
// suffix. Anything after a '+' is ignored (the simulator's fault suffix).
func DefaultModelClass(provider ratelimit.Provider, model string) string {
	if i := strings.IndexByte(model, '+'); i >= 0 {
		model = model[:i]
	}
	model = strings.ToLower(strings.TrimSpace(model))
	if m := claudeFamily.FindStringSubmatch(model); m != nil {
		if m[2] != "" {
			return "claude-" + m[2] + "-" + m[1]
		}
		return "claude-" + m[3] + "-" + m[4]
	}
	return dateSuffix.ReplaceAllString(model, "")
}
