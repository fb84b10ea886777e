// Package streamgate schedules LLM API traffic against an account's
// rate-limit budget. Its Transport is an http.RoundTripper that drops into
// the official SDKs (anthropic-sdk-go and openai-go accept it through
// option.WithHTTPClient): it estimates each request's cost, admits it
// through a per-key gate only when the budget allows, reads the rate-limit
// headers of every response, charges output tokens live while a stream
// runs, and retries what can be retried before the first byte (never
// before retry-after).
//
// A stream cut mid-answer (an error event, a dropped connection, a stall)
// is continued with a continuation request and spliced in, so the caller
// reads one complete message; what cannot be continued ends in a
// *StreamError wrapping ErrIncomplete. An incomplete stream is never
// handed over as a success.
package streamgate
