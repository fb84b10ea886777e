// Package resume continues interrupted LLM answers: it builds the
// continuation request of a stream that was cut after the caller had
// received part of its text, and splices the continuation's events into
// the caller's stream so that the caller's SDK sees one well-formed,
// complete answer.
//
// The package is pure: it neither sends requests nor reads bodies. The
// streamgate Transport drives it:
//
//  1. A stream ends without its terminal event (an error event such as a
//     mid-stream rate-limit or overloaded error, a dropped connection, a
//     stall). If nothing reached the caller the request is retried from
//     scratch. Otherwise Resumable (ResumableChat) says whether what the
//     caller received can be continued: text only. Tool calls, thinking and
//     anything else end the stream with a typed error.
//  2. Anthropic (OpenAI) builds the continuation from the original request
//     body and the text received: the partial text as a final assistant
//     message (Prefill) for models that accept it, or as an assistant
//     message followed by a user message asking the model to continue
//     (UserContinue). PrefillPolicy picks the form per model, from
//     configured patterns and from 400s that IsPrefillRejection recognises
//     (after which the continuation is sent again the other way; the 400
//     never reaches the caller). The OpenAI chat completions API has no
//     prefill: use UserContinue there.
//  3. The continuation goes through the same admission as any request,
//     ahead of new work. Its events go through an AnthropicSplicer
//     (ChatSplicer) built from an Origin describing the interrupted stream
//     (OriginFromMessage, OriginFromChat), and the bytes it returns are
//     appended to the caller's stream: no second message_start, consistent
//     block indexes, continuous text, usage summed over the attempts, one
//     message_stop (OpenAI: one id, one finish_reason, one usage chunk, one
//     [DONE]).
//  4. If the continuation is interrupted too, the splicer's Next is the
//     Origin of the next resume: build the next continuation from the
//     original body and Next().Text, set its Strip, splice again.
//
// Example (a Prefill resume of an Anthropic stream, error handling
// omitted):
//
//	ok, _ := resume.Resumable(stream)
//	form := policy.Form(model)
//	c, _ := resume.Anthropic(body, stream.Text(), produced, form)
//	o := resume.OriginFromMessage(stream, c.Strip, produced, -1)
//	sp := resume.NewAnthropicSplicer(o)
//	for each event ev of the continuation's response:
//		out, err = sp.Splice(out[:0], ev) // hand out to the caller
//
// Parsing is lenient and never panics: unknown fields, events and body
// members are preserved, and a continuation that breaks its protocol stops
// with ErrMalformed before anything of the offending event is written.
package resume
