package ratelimit

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// arrival is when the test responses "arrived".
var arrival = time.Date(2025, 8, 21, 12, 40, 0, 0, time.UTC)

// hdr builds an http.Header from name/value pairs, canonicalising names as
// net/http does.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// anthropicResponse is the header set of a real Anthropic Messages response
// (values shaped as in provider-facts.md).
func anthropicResponse() http.Header {
	return hdr(
		"content-type", "text/event-stream; charset=utf-8",
		"date", "Thu, 21 Aug 2025 12:40:00 GMT",
		"request-id", "req_018EeWyXxfu5pfWkrYcMdjWG",
		"anthropic-organization-id", "1b4e5e4b-7c1d-4d8e-9f3a-2a6c5b7d8e9f",
		"anthropic-ratelimit-requests-limit", "50",
		"anthropic-ratelimit-requests-remaining", "49",
		"anthropic-ratelimit-requests-reset", "2025-08-21T12:40:01Z",
		"anthropic-ratelimit-input-tokens-limit", "40000",
		"anthropic-ratelimit-input-tokens-remaining", "39000",
		"anthropic-ratelimit-input-tokens-reset", "2025-08-21T12:40:02Z",
		"anthropic-ratelimit-output-tokens-limit", "80000",
		"anthropic-ratelimit-output-tokens-remaining", "48000",
		"anthropic-ratelimit-output-tokens-reset", "2025-08-21T12:40:59Z",
		"anthropic-ratelimit-tokens-limit", "120000",
		"anthropic-ratelimit-tokens-remaining", "87000",
		"anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:59Z",
		"cf-ray", "8e695a03eed4f9fd-SJC",
		"server", "cloudflare",
		"via", "1.1 google",
	)
}

func TestParseAnthropic(t *testing.T) {
	s := Parse(anthropicResponse(), arrival)
	if s.Provider != Anthropic {
		t.Errorf("Provider = %v, want anthropic", s.Provider)
	}
	if !s.At.Equal(arrival) {
		t.Errorf("At = %v, want %v", s.At, arrival)
	}
	want := map[Dimension]Bucket{
		Requests:     {Limit: 50, Remaining: 49, Reset: arrival.Add(time.Second), Granularity: 1},
		InputTokens:  {Limit: 40000, Remaining: 39000, Reset: arrival.Add(2 * time.Second), Granularity: 1000},
		OutputTokens: {Limit: 80000, Remaining: 48000, Reset: arrival.Add(59 * time.Second), Granularity: 1000},
		Tokens:       {Limit: 120000, Remaining: 87000, Reset: arrival.Add(59 * time.Second), Granularity: 1000},
	}
	for _, d := range Dimensions() {
		t.Run(d.String(), func(t *testing.T) {
			w, ok := want[d]
			if !ok {
				w = UnknownBucket()
			}
			assertBucket(t, s.Bucket(d), w)
		})
	}
	if s.RequestID != "req_018EeWyXxfu5pfWkrYcMdjWG" {
		t.Errorf("RequestID = %q", s.RequestID)
	}
	if s.RetryAfter != -1 || s.ShouldRetry != ShouldRetryUnset {
		t.Errorf("RetryAfter, ShouldRetry = %v, %v; want -1, unset", s.RetryAfter, s.ShouldRetry)
	}
}

func assertBucket(t *testing.T, got, want Bucket) {
	t.Helper()
	if got.Limit != want.Limit || got.Remaining != want.Remaining || got.Granularity != want.Granularity || !got.Reset.Equal(want.Reset) {
		t.Errorf("bucket = %+v, want %+v", got, want)
	}
}

func TestParseAnthropic429(t *testing.T) {
	h := hdr(
		"retry-after", "17",
		"x-should-retry", "true",
		"request-id", "req_011CZRtHe9vmeRRMu6G4rMhJ",
		"anthropic-ratelimit-output-tokens-limit", "8000",
		"anthropic-ratelimit-output-tokens-remaining", "0",
		"anthropic-ratelimit-output-tokens-reset", "2025-08-21T12:40:17Z",
		"anthropic-ratelimit-requests-limit", "50",
		"anthropic-ratelimit-requests-remaining", "42",
		"anthropic-ratelimit-requests-reset", "2025-08-21T12:40:01Z",
	)
	s := Parse(h, arrival)
	if s.RetryAfter != 17*time.Second {
		t.Errorf("RetryAfter = %v, want 17s", s.RetryAfter)
	}
	if s.ShouldRetry != ShouldRetryTrue {
		t.Errorf("ShouldRetry = %v, want true", s.ShouldRetry)
	}
	assertBucket(t, s.Bucket(OutputTokens), Bucket{Limit: 8000, Remaining: 0, Reset: arrival.Add(17 * time.Second), Granularity: 1000})
	// A model that sends no input-tokens or tokens family: unknown, not zero.
	for _, d := range []Dimension{InputTokens, Tokens, PriorityInputTokens, PriorityOutputTokens} {
		if b := s.Bucket(d); b.Seen() {
			t.Errorf("%v = %+v, want unseen", d, b)
		}
	}
	if d, ok := s.Binding(); !ok || d != OutputTokens {
		t.Errorf("Binding = %v, %v; want output_tokens", d, ok)
	}
}

func TestParseAnthropicPriority(t *testing.T) {
	h := hdr(
		"anthropic-priority-input-tokens-limit", "400000",
		"anthropic-priority-input-tokens-remaining", "398000",
		"anthropic-priority-input-tokens-reset", "2025-08-21T12:40:01Z",
		"anthropic-priority-output-tokens-limit", "80000",
		"anthropic-priority-output-tokens-remaining", "12000",
		"anthropic-priority-output-tokens-reset", "2025-08-21T12:40:51Z",
	)
	s := Parse(h, arrival)
	if s.Provider != Anthropic {
		t.Errorf("Provider = %v, want anthropic (priority headers alone)", s.Provider)
	}
	assertBucket(t, s.Bucket(PriorityInputTokens), Bucket{Limit: 400000, Remaining: 398000, Reset: arrival.Add(time.Second), Granularity: 1000})
	assertBucket(t, s.Bucket(PriorityOutputTokens), Bucket{Limit: 80000, Remaining: 12000, Reset: arrival.Add(51 * time.Second), Granularity: 1000})
	assertBucket(t, s.Bucket(InputTokens), UnknownBucket())
}

func TestParseAbsoluteResetFormats(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Time // zero: unknown
	}{
		{"utc", "2025-08-21T12:40:59Z", arrival.Add(59 * time.Second)},
		{"fractional", "2025-08-21T12:40:59.250Z", arrival.Add(59*time.Second + 250*time.Millisecond)},
		{"nanoseconds", "2025-08-21T12:40:59.000000001Z", arrival.Add(59*time.Second + 1)},
		{"positive offset", "2025-08-21T14:40:30+02:00", arrival.Add(30 * time.Second)},
		{"negative offset", "2025-08-21T07:40:30-05:00", arrival.Add(30 * time.Second)},
		{"lowercase", "2025-08-21t12:40:30z", arrival.Add(30 * time.Second)},
		{"space separator", "2025-08-21 12:40:30Z", arrival.Add(30 * time.Second)},
		{"in the past", "2025-08-21T12:39:00Z", arrival.Add(-time.Minute)},
		{"date only", "2025-08-21", time.Time{}},
		{"relative", "59s", time.Time{}},
		{"unix", "1755780059", time.Time{}},
		{"http date", "Thu, 21 Aug 2025 12:40:59 GMT", time.Time{}},
		{"bad month", "2025-13-21T12:40:59Z", time.Time{}},
		{"garbage", "soon", time.Time{}},
		{"long garbage", strings.Repeat("z", 200), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Parse(hdr("anthropic-ratelimit-requests-reset", tt.value), arrival)
			got := s.Bucket(Requests).Reset
			if !got.Equal(tt.want) {
				t.Errorf("Reset(%q) = %v, want %v", tt.value, got, tt.want)
			}
			if s.Provider != Anthropic {
				t.Errorf("Provider = %v, want anthropic even for an unparsable value", s.Provider)
			}
		})
	}
}

func TestParseOpenAI(t *testing.T) {
	h := hdr(
		"x-request-id", "req_8e1f0c2a9b3d4e5f",
		"x-ratelimit-limit-requests", "10000",
		"x-ratelimit-remaining-requests", "9999",
		"x-ratelimit-reset-requests", "6ms",
		"x-ratelimit-limit-tokens", "30000",
		"x-ratelimit-remaining-tokens", "29937",
		"x-ratelimit-reset-tokens", "6m0s",
	)
	s := Parse(h, arrival)
	if s.Provider != OpenAI {
		t.Errorf("Provider = %v, want openai", s.Provider)
	}
	assertBucket(t, s.Bucket(Requests), Bucket{Limit: 10000, Remaining: 9999, Reset: arrival.Add(6 * time.Millisecond), Granularity: 1})
	assertBucket(t, s.Bucket(Tokens), Bucket{Limit: 30000, Remaining: 29937, Reset: arrival.Add(6 * time.Minute), Granularity: 1})
	for _, d := range []Dimension{InputTokens, OutputTokens, PriorityInputTokens, PriorityOutputTokens} {
		assertBucket(t, s.Bucket(d), UnknownBucket())
	}
	if s.RequestID != "req_8e1f0c2a9b3d4e5f" {
		t.Errorf("RequestID = %q, want the x-request-id value", s.RequestID)
	}
}

func TestParseRelativeResetFormats(t *testing.T) {
	tests := []struct {
		value string
		want  time.Time // zero: unknown
	}{
		{"1s", arrival.Add(time.Second)},
		{"6m0s", arrival.Add(6 * time.Minute)},
		{"12ms", arrival.Add(12 * time.Millisecond)},
		{"1.5s", arrival.Add(1500 * time.Millisecond)},
		{"2m30.5s", arrival.Add(150*time.Second + 500*time.Millisecond)},
		{"1h2m3s", arrival.Add(time.Hour + 2*time.Minute + 3*time.Second)},
		{"0s", arrival},
		{"20", arrival.Add(20 * time.Second)},
		{"0.25", arrival.Add(250 * time.Millisecond)},
		{"1755780059", time.Unix(1755780059, 0)},
		{"2025-08-21T12:41:00Z", arrival.Add(time.Minute)},
		{"-1s", time.Time{}},
		{"-5", time.Time{}},
		{"1d", time.Time{}},
		{"NaN", time.Time{}},
		{"Inf", time.Time{}},
		{"1e3", time.Time{}},
		{"9999999999999999999s", time.Time{}},
		{"99999999999999999999", time.Time{}},
		{"soon", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			s := Parse(hdr("x-ratelimit-reset-tokens", tt.value), arrival)
			if got := s.Bucket(Tokens).Reset; !got.Equal(tt.want) {
				t.Errorf("Reset(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestParseCounts(t *testing.T) {
	tests := []struct {
		value string
		want  int64
	}{
		{"48000", 48000},
		{"0", 0},
		{" 12 ", 12},
		{"48000.0", 48000},
		{"9223372036854775807", 9223372036854775807},
		{"9223372036854775808", -1},
		{"99999999999999999999999", -1},
		{"-1", -1},
		{"-48000", -1},
		{"+5", -1},
		{"1e3", -1},
		{"0x10", -1},
		{"1_000", -1},
		{"NaN", -1},
		{"Inf", -1},
		{"12abc", -1},
		{"abc", -1},
		{".5", -1},
		{"1.2.3", -1},
		{"", -1},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			s := Parse(hdr(
				"anthropic-ratelimit-output-tokens-remaining", tt.value,
				"x-ratelimit-limit-requests", tt.value,
			), arrival)
			out := s.Bucket(OutputTokens)
			if out.Remaining != tt.want {
				t.Errorf("Remaining(%q) = %d, want %d", tt.value, out.Remaining, tt.want)
			}
			wantGran := int64(1000)
			if tt.want < 0 {
				wantGran = 0
			}
			if out.Granularity != wantGran {
				t.Errorf("Granularity = %d, want %d", out.Granularity, wantGran)
			}
			if got := s.Bucket(Requests).Limit; got != tt.want {
				t.Errorf("Limit(%q) = %d, want %d", tt.value, got, tt.want)
			}
		})
	}
}

func TestParseProvider(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want Provider
	}{
		{"none", hdr("content-type", "application/json", "retry-after", "3"), ProviderUnknown},
		{"nil header", nil, ProviderUnknown},
		{"openai only", hdr("x-ratelimit-remaining-tokens", "100"), OpenAI},
		{"anthropic only", hdr("anthropic-ratelimit-tokens-limit", "100"), Anthropic},
		{"garbled anthropic value", hdr("anthropic-ratelimit-requests-limit", "many"), Anthropic},
		{"both", hdr("x-ratelimit-remaining-tokens", "100", "anthropic-ratelimit-requests-limit", "5"), Anthropic},
		{"empty value", hdr("anthropic-ratelimit-requests-limit", " "), ProviderUnknown},
		{"unrelated anthropic header", hdr("anthropic-organization-id", "x"), ProviderUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse(tt.h, arrival).Provider; got != tt.want {
				t.Errorf("Provider = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseBothFamilies(t *testing.T) {
	h := hdr(
		"anthropic-ratelimit-requests-limit", "50",
		"anthropic-ratelimit-requests-remaining", "40",
		"x-ratelimit-limit-requests", "1000",
		"x-ratelimit-remaining-requests", "999",
		"x-ratelimit-limit-tokens", "30000",
		"x-ratelimit-remaining-tokens", "20000",
	)
	s := Parse(h, arrival)
	if b := s.Bucket(Requests); b.Limit != 50 || b.Remaining != 40 {
		t.Errorf("Requests = %+v, want the anthropic values 40/50", b)
	}
	if b := s.Bucket(Tokens); b.Limit != 30000 || b.Remaining != 20000 || b.Granularity != 1 {
		t.Errorf("Tokens = %+v, want the x-ratelimit values 20000/30000", b)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		h      http.Header
		want   time.Duration
		wantOK bool
	}{
		{"absent", hdr(), 0, false},
		{"seconds", hdr("retry-after", "30"), 30 * time.Second, true},
		{"zero", hdr("retry-after", "0"), 0, true},
		{"fractional seconds", hdr("retry-after", "2.5"), 2500 * time.Millisecond, true},
		{"sub-nanosecond rounds up", hdr("retry-after", "0.0000000001"), 1, true},
		{"ms preferred", hdr("retry-after-ms", "1500", "retry-after", "2"), 1500 * time.Millisecond, true},
		{"fractional ms", hdr("retry-after-ms", "1500.5"), 1500*time.Millisecond + 500*time.Microsecond, true},
		{"garbled ms falls back", hdr("retry-after-ms", "soon", "retry-after", "2"), 2 * time.Second, true},
		{"negative ms falls back", hdr("retry-after-ms", "-1", "retry-after", "3"), 3 * time.Second, true},
		{"http date", hdr("retry-after", arrival.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second, true},
		{"http date past", hdr("retry-after", arrival.Add(-time.Hour).Format(http.TimeFormat)), 0, true},
		{"rfc850 date", hdr("retry-after", "Thursday, 21-Aug-25 12:41:00 GMT"), time.Minute, true},
		{"negative", hdr("retry-after", "-5"), 0, false},
		{"nan", hdr("retry-after", "NaN"), 0, false},
		{"inf", hdr("retry-after", "Inf"), 0, false},
		{"ms inf", hdr("retry-after-ms", "+Inf"), 0, false},
		{"exponent", hdr("retry-after", "1e3"), 0, false},
		{"overflow", hdr("retry-after", "9999999999999"), 0, false},
		{"ms overflow", hdr("retry-after-ms", "99999999999999999"), 0, false},
		{"garbage", hdr("retry-after", "later"), 0, false},
		{"empty", hdr("retry-after", ""), 0, false},
		{"padded", hdr("retry-after", "  7 "), 7 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.h, arrival)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
			wantSnap := time.Duration(-1)
			if tt.wantOK {
				wantSnap = tt.want
			}
			if s := Parse(tt.h, arrival); s.RetryAfter != wantSnap {
				t.Errorf("Snapshot.RetryAfter = %v, want %v", s.RetryAfter, wantSnap)
			}
		})
	}
}

func TestParseShouldRetry(t *testing.T) {
	tests := []struct {
		value string
		want  ShouldRetry
	}{
		{"true", ShouldRetryTrue},
		{"TRUE", ShouldRetryTrue},
		{" True ", ShouldRetryTrue},
		{"false", ShouldRetryFalse},
		{"False", ShouldRetryFalse},
		{"yes", ShouldRetryUnset},
		{"1", ShouldRetryUnset},
		{"", ShouldRetryUnset},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if got := Parse(hdr("x-should-retry", tt.value), arrival).ShouldRetry; got != tt.want {
				t.Errorf("ShouldRetry(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestParseRequestID(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"request-id", hdr("request-id", "req_a"), "req_a"},
		{"x-request-id", hdr("x-request-id", "req_b"), "req_b"},
		{"both prefers request-id", hdr("x-request-id", "req_b", "request-id", "req_a"), "req_a"},
		{"empty request-id falls back", hdr("request-id", "", "x-request-id", "req_b"), "req_b"},
		{"none", hdr(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse(tt.h, arrival).RequestID; got != tt.want {
				t.Errorf("RequestID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseFirstValueWins(t *testing.T) {
	h := http.Header{"Anthropic-Ratelimit-Requests-Remaining": {"7", "9"}}
	if got := Parse(h, arrival).Bucket(Requests).Remaining; got != 7 {
		t.Errorf("Remaining = %d, want the first value 7", got)
	}
}

func BenchmarkParse(b *testing.B) {
	h := anthropicResponse()
	h.Set("retry-after", "17")
	h.Set("x-should-retry", "true")
	b.ReportAllocs()
	for b.Loop() {
		s := Parse(h, arrival)
		if s.Provider != Anthropic {
			b.Fatal("not parsed")
		}
	}
}
