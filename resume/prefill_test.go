package resume

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func TestPrefillPolicy(t *testing.T) {
	p := NewPrefillPolicy(DefaultNoPrefillModels...)
	tests := []struct {
		model string
		want  bool
	}{
		{"claude-sonnet-4-5", true},
		{"claude-sonnet-4-5-20250929", true},
		{"claude-opus-4-1", true},
		{"claude-3-5-haiku-latest", true},
		{"claude-opus-4-6", false},
		{"claude-sonnet-4-6-20260217", false},
		{"claude-opus-4-7", false},
		{"us.anthropic.claude-opus-4-6-v1", false},
		{"claude-sonnet-5", false},
		{"", true},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			if got := p.Accepts(tt.model); got != tt.want {
				t.Errorf("Accepts(%q) = %v, want %v", tt.model, got, tt.want)
			}
			wantForm := Prefill
			if !tt.want {
				wantForm = UserContinue
			}
			if got := p.Form(tt.model); got != wantForm {
				t.Errorf("Form(%q) = %v, want %v", tt.model, got, wantForm)
			}
		})
	}
}

func TestPrefillPolicyLearns(t *testing.T) {
	var p PrefillPolicy // the zero value accepts everything
	if !p.Accepts("claude-opus-4-6") {
		t.Fatal("zero policy rejects a model before learning")
	}
	p.Learn("gateway-model")
	if p.Accepts("gateway-model") {
		t.Error("learned model still accepts prefill")
	}
	if !p.Accepts("gateway-model-2") {
		t.Error("learning one model changed another")
	}
	if got := p.Learned(); !reflect.DeepEqual(got, []string{"gateway-model"}) {
		t.Errorf("Learned() = %v", got)
	}
}

func TestPrefillPolicyMalformedPattern(t *testing.T) {
	p := NewPrefillPolicy("[", "claude-x*")
	if !p.Accepts("[") {
		t.Error("a malformed pattern matched")
	}
	if p.Accepts("claude-x1") {
		t.Error("a pattern after a malformed one did not match")
	}
}

func TestPrefillPolicyConcurrent(t *testing.T) {
	p := NewPrefillPolicy("a*")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				m := fmt.Sprintf("m%d-%d", i, j)
				p.Learn(m)
				if p.Accepts(m) {
					t.Errorf("%s accepted right after Learn", m)
				}
				_ = p.Learned()
			}
		}()
	}
	wg.Wait()
	if n := len(p.Learned()); n != 800 {
		t.Errorf("%d models learned, want 800", n)
	}
}

func TestIsPrefillRejection(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"Claude 4.6 message", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."},"request_id":"req_011"}`, true},
		{"trailing white space", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"messages: final assistant content cannot end with trailing whitespace"}}`, true},
		{"gateway wording", 400, `{"error":{"message":"Prefilling assistant messages is not supported for this model.","type":"invalid_request_error"}}`, true},
		{"thinking enabled", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0.type: Expected ` + "`thinking`" + ` or ` + "`redacted_thinking`" + `, but found ` + "`text`" + `. When ` + "`thinking`" + ` is enabled, a final ` + "`assistant`" + ` message must start with a thinking block (preceeding the lastmost set of ` + "`tool_use`" + ` and ` + "`tool_result`" + ` blocks)."}}`, true},
		{"flattened error", 400, `{"message":"This model does not support assistant message prefill."}`, true},
		{"other 400", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`, false},
		{"same words on a 500", 500, `{"type":"error","error":{"type":"api_error","message":"This model does not support assistant message prefill."}}`, false},
		{"not JSON", 400, `This model does not support assistant message prefill.`, false},
		{"message not a string", 400, `{"error":{"message":42}}`, false},
		{"empty", 400, ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPrefillRejection(tt.status, []byte(tt.body)); got != tt.want {
				t.Errorf("IsPrefillRejection = %v, want %v", got, tt.want)
			}
		})
	}
}
