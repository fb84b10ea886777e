package sim

import (
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message is one turn of a Conversation: its role ("user" or "assistant")
// and its text (the concatenation of its text content blocks).
type Message struct {
	Role string
	Text string
}

// Conversation is what a Generator answers: the system prompt and the
// messages, without a trailing assistant prefill.
type Conversation struct {
	System   string
	Messages []Message
}

// InputTokens returns the input-token count the simulator reports for c:
// CountTokens(c.System) plus, per message, 3 tokens of role framing and
// CountTokens of its text. (The server counts each content block separately,
// so a message split into several text blocks may count slightly
// differently; tools count CountTokens of their JSON, images 1,000 each.)
func InputTokens(c Conversation) int {
	n := CountTokens(c.System)
	for _, m := range c.Messages {
		n += messageOverhead + CountTokens(m.Text)
	}
	return n
}

const messageOverhead = 3

// Generator produces the simulator's answers: the full answer to a
// conversation is a pure function of the conversation and the generator's
// fields, so a test can check that what a client received is exactly the
// complete answer. The zero Generator is usable (MinOutputTokens 20,
// MaxOutputTokens 400, Seed 0). A Generator is a value and safe for
// concurrent use.
type Generator struct {
	// Seed varies the answers between simulators.
	Seed uint64
	// MinOutputTokens and MaxOutputTokens bound the length of an answer
	// chosen by hashing the conversation. Zero means 20 and 400.
	MinOutputTokens int
	MaxOutputTokens int
}

// DirectivePrefix starts the length directive: a conversation containing
// "[sim:tokens=N]" (in the system prompt or any message; the last one wins)
// gets an answer of exactly N tokens (1 <= N <= 1,000,000).
const DirectivePrefix = "[sim:tokens="

const maxDirectiveTokens = 1_000_000

// Length returns the number of tokens of the full answer to c.
func (g Generator) Length(c Conversation) int {
	if n, ok := directive(c); ok {
		return n
	}
	lo, hi := g.bounds()
	return lo + int(g.hash(c)%uint64(hi-lo+1))
}

func (g Generator) bounds() (int, int) {
	lo, hi := g.MinOutputTokens, g.MaxOutputTokens
	if lo <= 0 {
		lo = defaultMinOutput
	}
	if hi <= 0 {
		hi = defaultMaxOutput
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// Answer returns the full answer to c as tokens: strings whose
// concatenation is the answer's text, one output token each. The text mixes
// ASCII words with accented letters, CJK characters and emoji, and has
// spaces, newlines and list markers at varied positions, so continuation
// code meets multi-byte characters and whitespace at token edges.
func (g Generator) Answer(c Conversation) []string {
	n := g.Length(c)
	rng := rand.New(rand.NewPCG(g.hash(c), g.Seed^0x9e3779b97f4a7c15))
	return compose(rng, n)
}

// Text returns the full answer to c as one string: strings.Join(Answer(c), "").
func (g Generator) Text(c Conversation) string {
	return strings.Join(g.Answer(c), "")
}

// hash digests the seed and the conversation, length-prefixing every field
// so that different conversations cannot collide by concatenation.
func (g Generator) hash(c Conversation) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	put := func(s string) {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	binary.LittleEndian.PutUint64(buf[:], g.Seed)
	h.Write(buf[:])
	put(c.System)
	for _, m := range c.Messages {
		put(m.Role)
		put(m.Text)
	}
	return h.Sum64()
}

// directive finds the last [sim:tokens=N] in c.
func directive(c Conversation) (int, bool) {
	n, found := parseDirective(c.System)
	for _, m := range c.Messages {
		if v, ok := parseDirective(m.Text); ok {
			n, found = v, true
		}
	}
	return n, found
}

func parseDirective(s string) (int, bool) {
	n, found := 0, false
	for {
		i := strings.Index(s, DirectivePrefix)
		if i < 0 {
			return n, found
		}
		s = s[i+len(DirectivePrefix):]
		j := strings.IndexByte(s, ']')
		if j <= 0 || j > 8 {
			continue
		}
		v, err := strconv.Atoi(s[:j])
		if err != nil || v < 1 || v > maxDirectiveTokens {
			continue
		}
		n, found = v, true
	}
}

// Vocabulary. Words are stored with and without their leading space so that
// composing an answer allocates little.
var (
	plainWords = []string{
		"stream", "budget", "token", "bucket", "window", "request", "answer", "limit",
		"header", "retry", "minute", "output", "input", "scheduler", "account", "burst",
		"queue", "signal", "refill", "gate", "river", "harbor", "lantern", "orchard",
		"meadow", "copper", "velvet", "pattern", "thread", "engine", "simple", "quiet",
		"steady", "bright", "careful", "patient", "early", "later", "every", "the", "a",
		"of", "and", "to", "in", "is", "it", "that", "with", "for", "on", "as", "when",
		"while", "through", "across", "before", "after", "under", "over", "always",
	}
	accentedWords = []string{
		"café", "naïve", "résumé", "über", "façade", "Ångström", "déjà", "señor",
		"crème", "brûlée", "São", "Zürich", "piñata", "jalapeño", "œuvre",
	}
	cjkRunes = []string{"東", "京", "数", "据", "流", "水", "山", "雨", "光", "時", "間", "の", "は", "ë"}
	emoji    = []string{"🚀", "✨", "🌊", "🙂", "👍🏽", "🎉", "→", "€"}
	enders   = []string{".", ".", ".", "!", "?", "…", "。"}

	spacedWords, capWords, spacedAccented []string
)

func init() {
	for _, w := range plainWords {
		spacedWords = append(spacedWords, " "+w)
		r, size := utf8.DecodeRuneInString(w)
		capWords = append(capWords, string(unicode.ToUpper(r))+w[size:])
	}
	for _, w := range accentedWords {
		spacedAccented = append(spacedAccented, " "+w)
	}
}

// compose produces exactly n tokens of sentence-shaped text.
func compose(rng *rand.Rand, n int) []string {
	toks := make([]string, 0, n)
	lineStart := true // the next word starts a line: no leading space, capitalised
	words := 0        // words in the current sentence
	sentence := 6 + rng.IntN(11)
	for len(toks) < n {
		if len(toks) == n-1 && n > 1 {
			toks = append(toks, ".")
			break
		}
		if lineStart {
			toks = append(toks, capWords[rng.IntN(len(capWords))])
			lineStart, words = false, 1
			continue
		}
		if words >= sentence {
			toks = append(toks, enders[rng.IntN(len(enders))])
			words, sentence = 0, 6+rng.IntN(11)
			switch p := rng.IntN(100); {
			case p < 12:
				toks = append(toks, "\n\n")
				lineStart = true
			case p < 18:
				toks = append(toks, "\n")
				lineStart = true
			case p < 24:
				toks = append(toks, "\n- ")
				lineStart = true
			}
			continue
		}
		words++
		switch p := rng.IntN(100); {
		case p < 62:
			toks = append(toks, spacedWords[rng.IntN(len(spacedWords))])
		case p < 72:
			toks = append(toks, spacedAccented[rng.IntN(len(spacedAccented))])
		case p < 78:
			// A CJK phrase: the first rune carries the space, the rest are
			// single-rune tokens directly adjacent to each other.
			toks = append(toks, " "+cjkRunes[rng.IntN(len(cjkRunes))])
			for k := rng.IntN(3) + 1; k > 0 && len(toks) < n-1; k-- {
				toks = append(toks, cjkRunes[rng.IntN(len(cjkRunes))])
			}
		case p < 83:
			if rng.IntN(2) == 0 {
				toks = append(toks, " "+emoji[rng.IntN(len(emoji))])
			} else {
				toks = append(toks, emoji[rng.IntN(len(emoji))])
			}
		case p < 88:
			toks = append(toks, ",")
		case p < 92:
			toks = append(toks, " "+strconv.Itoa(rng.IntN(10000)))
		case p < 96:
			// A bare space token followed by a word without one.
			toks = append(toks, " ")
			if len(toks) < n-1 {
				toks = append(toks, plainWords[rng.IntN(len(plainWords))])
			}
		default:
			toks = append(toks, "  —")
		}
	}
	return toks
}
