package resume_test

import (
	"bytes"
	"fmt"

	"github.com/streamgate/streamgate/resume"
	"github.com/streamgate/streamgate/sse"
)

func ExampleAnthropic() {
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,` +
		`"messages":[{"role":"user","content":"Name three colours."}]}`)

	// The stream was cut after the caller received this text, 9 output
	// tokens into the answer.
	partial := "Red, green and "

	c, err := resume.Anthropic(body, partial, 9, resume.Prefill)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(c.Body))
	fmt.Printf("strip %q\n", c.Strip)

	// A model that rejects prefill gets the user-continue form instead.
	policy := resume.NewPrefillPolicy(resume.DefaultNoPrefillModels...)
	fmt.Println(policy.Form("claude-opus-4-6"))
	// Output:
	// {"model":"claude-sonnet-4-5","max_tokens":1015,"stream":true,"messages":[{"role":"user","content":"Name three colours."},{"role":"assistant","content":"Red, green and"}]}
	// strip " "
	// user-continue
}

func ExampleAnthropicSplicer() {
	const interrupted = `event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Red, green and "}}

`
	// The continuation (sent with the prefill "Red, green and") begins
	// with the space the prefill could not end with.
	const continuation = `event: message_start
data: {"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":17,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" blue."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}

event: message_stop
data: {"type":"message_stop"}

`
	var stream sse.MessageStream
	caller := readAll(interrupted, stream.Observe)

	ok, _ := resume.Resumable(&stream)
	fmt.Println("resumable:", ok)
	o := resume.OriginFromMessage(&stream, " ", 5, -1)
	sp := resume.NewAnthropicSplicer(o)
	readAll(continuation, func(ev sse.Event) {
		var err error
		if caller, err = sp.Splice(caller, ev); err != nil {
			fmt.Println(err)
		}
	})

	// The caller's stream is one complete message.
	var result sse.MessageStream
	readAll(string(caller), result.Observe)
	fmt.Println(result.End().Status, result.NumBlocks(), "block")
	fmt.Printf("%q\n", result.Text())
	fmt.Println("output tokens:", result.Usage().OutputTokens)
	// Output:
	// resumable: true
	// complete 1 block
	// "Red, green and blue."
	// output tokens: 8
}

// readAll feeds every event of stream to observe and returns its bytes.
func readAll(stream string, observe func(sse.Event)) []byte {
	rd := sse.NewReader(bytes.NewReader([]byte(stream)))
	for {
		ev, err := rd.Next()
		if err != nil { // io.EOF at the end
			return []byte(stream)
		}
		observe(ev)
	}
}

func ExampleIsPrefillRejection() {
	body := []byte(`{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}`)
	var policy resume.PrefillPolicy
	if resume.IsPrefillRejection(400, body) {
		policy.Learn("claude-opus-4-6")
	}
	fmt.Println(policy.Form("claude-opus-4-6"), policy.Form("claude-sonnet-4-5"))
	// Output:
	// user-continue prefill
}
