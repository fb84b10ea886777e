package cost

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseAnthropic(t *testing.T) {
	body := `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,
	  "system":[{"type":"text","text":"You are terse."}],
	  "messages":[{"role":"user","content":"Hello there"},
	    {"role":"assistant","content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},
	    {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"ok"}]},{"type":"image","source":{}}]}],
	  "tools":[{"name":"f","input_schema":{}}]}`
	r, err := Parse(Messages, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	wantChars := int64(len("You are terse.") + len("Hello there") + len("Hi") + len(`{"a":1}`) + len("ok") + len(`{"name":"f","input_schema":{}}`))
	if r.Model != "claude-sonnet-4-5" || !r.Stream || r.MaxTokens != 1024 || r.Messages != 3 || r.Images != 1 || r.LastRole != "user" {
		t.Fatalf("parsed %+v", r)
	}
	if r.InputChars != wantChars {
		t.Fatalf("InputChars = %d, want %d", r.InputChars, wantChars)
	}
}

func TestParseOpenAI(t *testing.T) {
	body := `{"model":"gpt-4o","max_completion_tokens":300,"stream":true,"stream_options":{"include_usage":true},
	  "messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"héllo"}]}]}`
	r, err := Parse(ChatCompletions, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxTokens != 300 || !r.IncludeUsage || r.InputChars != int64(len("be brief")+5) {
		t.Fatalf("parsed %+v", r)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, b := range []string{"", "not json", "[1,2]", `{"messages": 5}`} {
		if _, err := Parse(Messages, []byte(b)); !errors.Is(err, ErrBadRequestBody) {
			t.Errorf("Parse(%q) err = %v, want ErrBadRequestBody", b, err)
		}
	}
}

func TestEstimateSafetyAndMaxTokensPolicy(t *testing.T) {
	e := NewEstimator()
	r := Request{Model: "m", InputChars: 400, Messages: 1, MaxTokens: 500}
	est := e.Estimate(r)
	// raw = 100 + 4 = 104; x1.2 = 124.8 -> 125
	if est.RawInput != 104 || est.Input != 125 || est.Output != 500 {
		t.Fatalf("estimate %+v", est)
	}
	r.MaxTokens = 0
	if got := e.Estimate(r).Output; got != 4096 {
		t.Fatalf("default max tokens reservation = %d", got)
	}
}

func TestCalibrationConverges(t *testing.T) {
	e := NewEstimator(WithSafetyFactor(1))
	r := Request{Model: "m", InputChars: 4000}
	raw := RawInput(r)
	for range 50 {
		e.ObserveInput("m", raw, raw*3/2)
	}
	if ratio := e.InputRatio("m"); ratio < 1.49 || ratio > 1.51 {
		t.Fatalf("ratio = %v, want ~1.5", ratio)
	}
	if got, want := e.Estimate(r).Input, raw*3/2; got < want-1 || got > want+1 {
		t.Fatalf("calibrated estimate %d, want ~%d", got, want)
	}
	if e.InputRatio("other") != 1 {
		t.Fatal("calibration leaked across models")
	}
}

func TestQuantilePolicy(t *testing.T) {
	e := NewEstimator(WithOutputPolicy(ReserveQuantile, 0.9, 10), WithSafetyFactor(1))
	r := Request{Model: "m", MaxTokens: 4000}
	for i := range 9 {
		e.ObserveOutput("m", int64(100*(i+1)))
	}
	if got := e.Estimate(r).Output; got != 4000 {
		t.Fatalf("before minSamples reservation = %d, want max_tokens", got)
	}
	e.ObserveOutput("m", 1000)
	// 10 samples 100..1000: nearest-rank 0.9 quantile is 900.
	if got := e.Estimate(r).Output; got != 900 {
		t.Fatalf("quantile reservation = %d, want 900", got)
	}
	r.MaxTokens = 500
	if got := e.Estimate(r).Output; got != 500 {
		t.Fatalf("reservation %d exceeds max_tokens 500", got)
	}
}

func TestOutputRingKeepsRecent(t *testing.T) {
	e := NewEstimator(WithOutputPolicy(ReserveQuantile, 1, 1), WithSafetyFactor(1))
	for range outputWindow {
		e.ObserveOutput("m", 5000)
	}
	for range outputWindow {
		e.ObserveOutput("m", 10)
	}
	if got := e.Estimate(Request{Model: "m", MaxTokens: 8000}).Output; got != 10 {
		t.Fatalf("max of recent outputs = %d, want 10 (old samples evicted)", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"y"}]}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(Messages, b)
		if err != nil {
			return
		}
		if r.InputChars < 0 || r.MaxTokens < 0 || r.Images < 0 {
			t.Fatalf("negative counts: %+v", r)
		}
		if est := NewEstimator().Estimate(r); est.Input < 0 || est.Output < 1 {
			t.Fatalf("estimate %+v", est)
		}
	})
}

func ExampleEstimator() {
	e := NewEstimator() // safety factor 1.2, reserve max_tokens
	req, _ := Parse(Messages, []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,
		"messages":[{"role":"user","content":"Write a haiku about rate limits."}]}`))
	est := e.Estimate(req)
	fmt.Println(est.Input, est.Output)
	// Output: 15 1024
}
