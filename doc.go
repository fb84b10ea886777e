// Package streamgate schedules LLM API traffic against an account's
// rate-limit budget. Its Transport is an http.RoundTripper that drops into
// the official SDKs (anthropic-sdk-go and openai-go accept it through
// option.WithHTTPClient): it estimates each request's cost, admits it through
// a per-key gate only when the budget allows, reads the rate-limit headers of
// every response, charges output tokens live while a stream runs, retries
// what can be retried (honouring retry-after), and makes an incomplete stream
// an explicit error rather than a truncated success.
package streamgate
