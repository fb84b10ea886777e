// Package sse reads and writes server-sent events the way LLM APIs stream
// them, and models the two streaming protocols streamgate schedules: the
// Anthropic Messages stream and the OpenAI chat completions stream.
//
// The package has three layers:
//
//   - An incremental event-stream parser that follows the WHATWG
//     EventSource rules. Parser is push style (feed it any chunks, split
//     anywhere); Reader is pull style over an io.Reader; Observer is an
//     io.Reader that forwards a body's bytes unchanged while reporting each
//     event as its last byte passes through, which is how streamgate
//     watches an upstream body without delaying or altering it.
//     AppendEvent writes events for producers.
//
//   - Stream models that consume events and keep what a scheduler and a
//     resumer need: usage, stop reasons, the content delivered so far.
//     MessageStream models Anthropic, ChatStream OpenAI.
//
//   - A completeness Verdict. A stream is Complete only when its terminal
//     event arrived (Anthropic: message_stop; OpenAI: finish_reason for every
//     choice, then [DONE] or a clean end of the body). An error event makes it
//     Errored, an early end Truncated, and a protocol violation Malformed. A
//     truncated answer never looks like success.
//
// Parsing is lenient where the protocol allows (unknown fields, event types
// and delta types are ignored) and never panics on any input.
package sse
