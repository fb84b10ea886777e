package sse_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/streamgate/streamgate/sse"
)

func ExampleNewReader() {
	body := strings.NewReader("event: ping\ndata: {\"type\": \"ping\"}\n\n" +
		": keep-alive\n\n" +
		"data: first line\ndata: second line\n\n")
	rd := sse.NewReader(body)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			fmt.Println("clean end")
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Printf("type=%q data=%q\n", ev.Type, ev.Data)
	}
	// Output:
	// type="ping" data="{\"type\": \"ping\"}"
	// type="" data="first line\nsecond line"
	// clean end
}

func ExampleMessageStream() {
	// The connection dropped after some text: no message_stop arrived.
	body := strings.NewReader(`event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The answer is"}}

`)
	var stream sse.MessageStream
	rd := sse.NewReader(body)
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		stream.Observe(ev)
	}
	v := stream.End()
	fmt.Println(v.Status, "-", v.Reason)
	fmt.Printf("delivered so far: %q\n", stream.Text())
	// Output:
	// truncated - stream ended inside text block 0, before message_stop
	// delivered so far: "The answer is"
}

func ExampleNewObserver() {
	const upstream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: [DONE]\n\n"
	var chat sse.ChatStream
	body := sse.NewObserver(strings.NewReader(upstream), chat.Observe)

	// The caller reads the body as usual and gets the bytes unchanged.
	b, _ := io.ReadAll(body)
	fmt.Println("unchanged:", string(b) == upstream)
	fmt.Println(chat.Verdict().Status, chat.Text(), chat.FinishReason())
	// Output:
	// unchanged: true
	// complete Hi stop
}

func ExampleAppendEvent() {
	var b []byte
	b = sse.AppendEvent(b, "message_stop", []byte(`{"type":"message_stop"}`))
	b = sse.AppendEvent(b, "", []byte("two\nlines"))
	fmt.Print(string(b))
	// Output:
	// event: message_stop
	// data: {"type":"message_stop"}
	//
	// data: two
	// data: lines
}

func ExampleChatStream() {
	// A provider that never sends [DONE]: a clean end after finish_reason
	// is complete.
	var chat sse.ChatStream
	chat.Observe(sse.Event{Data: []byte(`{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Done."},"finish_reason":"stop"}]}`)})
	fmt.Println(chat.Verdict().Status)
	fmt.Println(chat.End().Status, "-", chat.End().Reason)
	// Output:
	// in_progress
	// complete - stream ended cleanly after finish_reason, without [DONE]
}

func ExampleParser() {
	var p sse.Parser
	emit := func(ev sse.Event) { fmt.Printf("%s: %s\n", ev.Type, ev.Data) }
	// Chunks may split anywhere, even inside a CRLF pair.
	_ = p.Feed([]byte("event: a\r"), emit)
	_ = p.Feed([]byte("\ndata: 1\r\n\r"), emit)
	_ = p.Feed([]byte("\nevent: b\ndata: 2"), emit)
	_ = p.End()
	fmt.Println("partial event dropped:", p.Partial())
	// Output:
	// a: 1
	// partial event dropped: true
}
