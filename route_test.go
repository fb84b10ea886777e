package streamgate

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/streamgate/streamgate/fingerprint"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, url string
		want        Endpoint
	}{
		{"POST", "https://api.anthropic.com/v1/messages", AnthropicMessages},
		{"POST", "http://127.0.0.1:8787/v1/messages/", AnthropicMessages},
		{"POST", "https://api.anthropic.com/v1/messages/count_tokens", AnthropicCountTokens},
		{"POST", "https://api.openai.com/v1/chat/completions", OpenAIChatCompletions},
		{"POST", "http://host/openai/v1/chat/completions", OpenAIChatCompletions},
		{"GET", "https://api.anthropic.com/v1/messages", PassThrough},
		{"POST", "https://api.anthropic.com/v1/messages/batches", PassThrough},
		{"GET", "https://api.openai.com/v1/models", PassThrough},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			if got := Classify(httptest.NewRequest(tt.method, tt.url, nil)); got != tt.want {
				t.Fatalf("Classify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAPIKeyFingerprint(t *testing.T) {
	h := http.Header{}
	h.Set("X-Api-Key", "sk-ant-1")
	if got := apiKeyFingerprint(h); got != fingerprint.Of("sk-ant-1") {
		t.Fatalf("x-api-key fingerprint = %q", got)
	}
	h = http.Header{}
	h.Set("Authorization", "Bearer sk-openai-2")
	if got := apiKeyFingerprint(h); got != fingerprint.Of("sk-openai-2") {
		t.Fatalf("bearer fingerprint = %q", got)
	}
	if got := apiKeyFingerprint(http.Header{}); got != "fp_none" {
		t.Fatalf("no key fingerprint = %q", got)
	}
}

func TestDefaultModelClass(t *testing.T) {
	tests := map[string]string{
		"claude-sonnet-4-5-20250929":       "claude-sonnet-4",
		"claude-sonnet-4-0":                "claude-sonnet-4",
		"claude-opus-4-6":                  "claude-opus-4",
		"claude-3-5-haiku-20241022":        "claude-haiku-3",
		"claude-3-7-sonnet-latest":         "claude-sonnet-3",
		"claude-sonnet-4-5+fault=529":      "claude-sonnet-4",
		"gpt-4o-2024-08-06":                "gpt-4o",
		"gpt-4o-mini":                      "gpt-4o-mini",
		"meta-llama/Llama-3.1-8B-Instruct": "meta-llama/llama-3.1-8b-instruct",
	}
	for model, want := range tests {
		if got := DefaultModelClass(ratelimit.Anthropic, model); got != want {
			t.Errorf("DefaultModelClass(%q) = %q, want %q", model, got, want)
		}
	}
}
