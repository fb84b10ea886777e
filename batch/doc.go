// Package batch runs a file of LLM API requests through streamgate and
// writes one result per request, exactly once, even across crashes: the
// engine behind `streamgate batch` and `streamgate demo`.
//
// # Formats
//
// The input is JSON Lines in the format users already have for the
// providers' asynchronous batch APIs:
//
//   - Anthropic Message Batches: {"custom_id": "...", "params": {...}},
//     params being a Messages API request body. custom_id is 1 to 64
//     letters, digits, '-' or '_'.
//   - OpenAI Batch: {"custom_id": "...", "method": "POST", "url":
//     "/v1/chat/completions", "body": {...}}. Only chat completions can be
//     streamed, so other urls are invalid lines.
//
// The first valid line fixes the file's format. Results are written in the
// matching provider's result format:
//
//	{"custom_id":"a","result":{"type":"succeeded","message":{...Message...}}}
//	{"custom_id":"b","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"..."},"request_id":"req_..."}}}
//	{"id":"batch_req_...","custom_id":"c","response":{"status_code":200,"request_id":"...","body":{...chat.completion...}},"error":null}
//
// Every request is sent with streaming on (Anthropic "stream": true;
// OpenAI also stream_options.include_usage) so that long answers never meet
// a non-streaming timeout, and the message is assembled from the stream:
// every field of message_start, every content block with its deltas
// applied (text, tool input JSON, thinking, signatures, citations), the
// stop reason and the final usage; for OpenAI a chat.completion with the
// choices' content, tool calls, finish reasons and usage.
//
// # Invalid input
//
// Malformed lines, missing or invalid fields (custom_id, model,
// messages, Anthropic's max_tokens), lines in the other format, unsupported
// OpenAI urls and duplicate custom_ids are all reported with their line
// numbers before any request is sent. By default Run refuses the file
// (*InputError); with Config.SkipInvalid it runs the valid lines and lists
// the skipped ones in Summary.Invalid. For a duplicate custom_id the first
// line is the one kept.
//
// # Nothing lost, nothing twice
//
// Results are appended to the results file one line per write, and the
// file is synced before a result counts as done. On start Run reads the
// existing file and skips every custom_id already in it, so rerunning with
// the same results file resumes the batch. A process killed at any moment
// (kill -9) leaves at most a torn last line: the next run truncates it
// (Summary.TornBytes) and sends that request again, so every custom_id ends
// with exactly one result. An unparsable line anywhere else means the file
// was not written by a run, and Run refuses it (ErrCorruptResults). An
// advisory lock keeps two runs from appending to one file (ErrLocked).
//
// # What is recorded
//
// A result line is written only for a request that is finished:
//
//   - succeeded: the stream's terminal event arrived. An interrupted
//     stream (a *streamgate.StreamError from the body, or any stream
//     without its terminal event) is never recorded as a success.
//   - errored: the provider refused the request with an error that sending
//     it again cannot fix (400 invalid request, 401, 403, 404, 413, spend
//     cap or quota), with the provider's own error body.
//
// Transient failures (rate limits, overload, server errors, broken
// streams, network errors, admission timeouts) are retried: by the
// Transport within one attempt, then by the runner up to
// Config.MaxAttempts attempts. A request still failing is left without a
// result (Summary.Pending, Summary.Failures) and Run returns an error
// wrapping ErrIncomplete; a rerun sends it again. So a results file never
// records an outage as the answer to a request.
//
// # Scheduling
//
// With the Streamgate strategy every request goes through one
// streamgate.Transport at batch priority, which admits it against the
// budget learned from the rate-limit headers, retries honouring
// retry-after, charges output live and resumes interrupted streams. The
// runner keeps QueueAhead requests waiting beyond those admitted, so each
// request's cost is estimated shortly before its admission, and it reserves
// output by the lengths seen so far (OutputQuantile, after OutputSamples
// answers) rather than by max_tokens. The Naive strategy is the baseline
// of the demo: everything at once, a fixed retry delay, no header reads.
//
// # The summary
//
// Summary reports the makespan and the theoretical minimum for the work
// done under the learned limits: a budget of limit L per window W, full at
// the start, refills at L/W, so a dimension that needs N units takes
// max(0, N - L) / (L/W) (MinTime); the budget bound is the largest of
// these over dimensions and budgets (the binding dimension), and the
// theoretical minimum is that or the longest single stream, whichever is
// longer. Utilisation per dimension is what every attempt drew divided by
// what the budget granted during the run, L + L/W x makespan. It also
// counts rate-limit errors, retries, streams resumed in place, mid-stream
// failures and output tokens wasted on attempts thrown away.
//
// Estimate (the dry run) applies the same formula to a workload before it
// runs, with input tokens estimated from the text and output at max_tokens
// (or an expected length).
package batch
