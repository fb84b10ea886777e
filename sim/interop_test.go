package sim

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/streamgate/streamgate/sse"
)

// TestStreamsJudgedBySSEModels feeds simulator streams to streamgate's own
// stream models and checks each ending gets the verdict it should: the
// simulator's streams must be exactly what the rest of streamgate expects.
func TestStreamsJudgedBySSEModels(t *testing.T) {
	cfg := fastConfig()
	cfg.Anthropic.OTPM = 600
	_, ts := startSim(t, cfg)
	tests := []struct {
		name   string
		openai bool
		fault  string
		prompt string
		want   sse.Status
	}{
		{"complete", false, "", "[sim:tokens=40] ok", sse.Complete},
		{"otpm runs dry", false, "", "[sim:tokens=900] long", sse.Errored},
		{"529 midstream", false, "529-midstream;at=5", "[sim:tokens=40] a", sse.Errored},
		{"drop midstream", false, "drop-midstream;at=5;cut=9", "[sim:tokens=40] b", sse.Truncated},
		{"no terminal", false, "no-terminal", "[sim:tokens=40] c", sse.Truncated},
		{"malformed", false, "malformed-event;at=3", "[sim:tokens=40] d", sse.Malformed},
		{"openai complete", true, "", "[sim:tokens=40] ok", sse.Complete},
		{"openai 529 midstream", true, "529-midstream;at=5", "[sim:tokens=40] e", sse.Errored},
		{"openai drop", true, "drop-midstream;at=5", "[sim:tokens=40] f", sse.Truncated},
		{"openai malformed", true, "malformed-event;at=2", "[sim:tokens=40] g", sse.Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outcome
			if tt.openai {
				hdr := openAIHeaders(tt.name)
				if tt.fault != "" {
					hdr["x-sim-fault"] = tt.fault + ";id=" + tt.name
				}
				o = do(t, ts.URL, "/v1/chat/completions", hdr, chatBody("gpt", tt.prompt, 0, true, true))
			} else {
				hdr := anthropicHeaders(tt.name)
				if tt.fault != "" {
					hdr["x-sim-fault"] = tt.fault + ";id=" + tt.name
				}
				o = do(t, ts.URL, "/v1/messages", hdr, msgBody("claude-sonnet-4-5", tt.prompt, 2000, true))
			}
			var ms sse.MessageStream
			var cs sse.ChatStream
			rd := sse.NewReader(bytes.NewReader(o.body))
			for {
				ev, err := rd.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, sse.ErrTruncated) {
						t.Fatal(err)
					}
					break
				}
				if tt.openai {
					cs.Observe(ev)
				} else {
					ms.Observe(ev)
				}
			}
			var v sse.Verdict
			switch {
			case o.readErr != nil && tt.openai:
				v = cs.Interrupt(o.readErr.Error())
			case o.readErr != nil:
				v = ms.Interrupt(o.readErr.Error())
			case tt.openai:
				v = cs.End()
			default:
				v = ms.End()
			}
			if v.Status != tt.want {
				t.Fatalf("verdict %v (%s), want %v", v.Status, v.Reason, tt.want)
			}
		})
	}
}
