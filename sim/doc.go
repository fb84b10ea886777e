// Package sim is streamgate's simulator of the upstream LLM APIs: an
// http.Handler that answers like the Anthropic Messages API and the OpenAI
// Chat Completions API, with their rate limiting, their headers, their
// error bodies and their failures. No test, demo or benchmark of streamgate
// reaches a real provider; everything streamgate claims is measured against
// this package, so it behaves like the real services rather than like a
// convenient mock. Mount a *Server on httptest.NewServer, or run it with
// `streamgate sim`.
//
// # Endpoints
//
//   - POST /v1/messages (streaming and not), POST /v1/messages/count_tokens:
//     x-api-key (or Authorization: Bearer) and anthropic-version are
//     required; bodies are validated like the real API (missing max_tokens,
//     bad roles, bad JSON, empty content, a final assistant message ending in
//     whitespace, ...) with the real status codes and error bodies.
//   - POST /v1/chat/completions (streaming with and without
//     stream_options.include_usage, and not): Authorization: Bearer is
//     required; OpenAI's error bodies.
//   - GET /sim/stats (Stats as JSON), GET /sim/log (the request log as JSON
//     lines), POST /sim/reset (Server.Reset), GET /sim/health.
//
// # Rate limits
//
// Limits are per API key and per endpoint family. Every bucket is a
// continuously refilled token bucket: level += elapsed*limit/Window, capped
// at the limit; a key's buckets start full. Anthropic has RPM, ITPM and
// OTPM buckets (or, with AnthropicLimits.CombinedTPM, RPM and one tokens
// bucket counting input and output together, the seed article's model);
// OpenAI has RPM and TPM. Config.Window scales the "minute" (e.g. 6s for
// fast tests); Tier1..Tier4 are presets.
//
// Admission (Anthropic): a request needs RPM >= 1, ITPM >= its input tokens
// (input + cache creation; cache reads are free) and OTPM >= 1; it takes 1
// request and its input tokens. Output tokens are then drawn from OTPM one
// by one as they are produced: token j (0-based) of a response is due at
// start + FirstTokenDelay + j/TokensPerSecond and is drawn when it is sent;
// tokens sent together (because they fell due within one FlushInterval) are
// drawn at the same instant. When the bucket holds less than one token for
// the next token the stream ends with
//
//	event: error
//	data: {"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (...) of 8,000 output tokens per minute. ..."}}
//
// and no message_stop (OpenAI: a data: {"error":{...}} chunk and no
// [DONE]). The cut point is therefore predictable: with one token per wake
// (1/TokensPerSecond >= FlushInterval), level L0 at the start and refill rate
// r = limit/Window, token j is sent iff the level at its due time,
// min(limit, ...) refilled by r per second and drawn 1 per earlier token, is
// at least 1. A non-streaming request is generated at the same pace and
// gets a 429 if its output budget runs dry.
//
// Admission (OpenAI): a request needs RPM >= 1 and TPM >= prompt tokens +
// max_tokens (max_completion_tokens; default OpenAILimits.DefaultMaxTokens)
// and takes both up front; the unused part is not refunded, as the real API
// does not. With OpenAILimits.LiveOutput it takes only the prompt and draws
// output live, like OTPM above.
//
// A rejected request gets a 429 naming the binding dimension in the real
// message text, with retry-after = the wait until every bucket would admit
// it, rounded up to whole seconds (so retrying after it succeeds if nothing
// else drew the buckets; at least 1). Rejections draw nothing. A request
// bigger than a bucket's limit is rejected with retry-after = time to full
// and can never succeed. The optional Acceleration limit rejects a sudden
// ramp of concurrent requests even when budgets allow.
//
// # Headers
//
// Every response of the API endpoints carries a request id (Anthropic
// request-id: req_011C...; OpenAI x-request-id) and, once the key is known,
// the rate-limit headers for the key's buckets at the time the headers are
// written (after the admission draw): Anthropic
// anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}
// with token remainders rounded to the nearest thousand and resets as the
// RFC 3339 second (rounded up) when the bucket will be full (the tokens
// family is input+output combined, or the combined bucket); OpenAI
// x-ratelimit-{limit,remaining}-{requests,tokens} and
// x-ratelimit-reset-{requests,tokens} as Go durations (rounded up to the
// millisecond) until full. A bucket configured as Unlimited is absent and so
// are its headers. count_tokens reports the Messages buckets without
// drawing them (the real endpoint has its own, much larger limit).
//
// # Content
//
// The full answer to a conversation is Generator.Answer: a pure function of
// the conversation (system prompt and messages), the Seed and the output
// length bounds, whose text mixes ASCII, accented letters, CJK characters,
// emoji, spaces, newlines and list markers. Its length varies by prompt
// unless the prompt contains the directive [sim:tokens=N]. max_tokens cuts
// it (stop_reason max_tokens; OpenAI finish_reason length). Input tokens are
// counted by CountTokens, the simulator's own deterministic tokenizer
// (InputTokens gives a conversation's count).
//
// Continuation follows Generator.Reply, which the resume code relies on:
// a final assistant message on /v1/messages (a prefill, which the real API
// rejects with a 400 if it ends in whitespace) whose text is a prefix of the
// answer to the preceding conversation makes the response continue that
// answer from exactly where the prefill ends, even mid-token; models
// matching Config.NoPrefillModels reject a final assistant message with the
// real 400. On either endpoint, the form (conversation, assistant: partial
// text, user: a message containing "continue") answers with the remainder
// after the partial text, if it is a prefix of the conversation's answer.
// Usage counts only what a response generated.
//
// # Faults
//
// Every fault of FaultNames can be targeted at one request by an
// unmodified SDK client, with the x-sim-fault header or a model suffix
// ("claude-sonnet-4-5+fault=drop-midstream;at=10;cut=7"), see FaultSpec;
// times=K makes it fire for the first K requests carrying the same spec (so
// a retried or resumed request recovers). Config.Faults injects them at
// random, deterministically for a seed and a request order. Faults before
// the response draw no budget; mid-stream faults act after admission.
//
// # Observability
//
// Server.Log (and Config.LogPath, and GET /sim/log) records every API
// request: time, key fingerprint, endpoint, model, status, tokens, how it
// ended and the fault injected. Server.Stats (GET /sim/stats) has totals
// and a sampled time series of every bucket. Server.Levels gives a key's
// true bucket levels, for tests; Server.Reset clears everything between
// tests.
//
// # Scale
//
// A stream costs its handler goroutine, one timer and one wake-up per
// FlushInterval (tokens due together are written together), so thousands
// of concurrent streams fit on two cores; see BenchmarkConcurrentStreams.
package sim
