package sim

import (
	"unicode/utf8"
)

// CountTokens is the simulator's tokenizer: a deterministic token count for
// text, used for every input-token figure the simulator reports. It is not
// Claude's or OpenAI's tokenizer (neither is reproducible locally) and not
// simply characters/4, so client-side estimators have something real to
// calibrate against. The rules, applied left to right:
//
//   - a run of ASCII letters (with Latin-1/Latin Extended letters such as
//     "é" inside it) of n characters costs 1 + (n-1)/6 tokens, plus one more
//     per non-ASCII letter in it;
//   - a run of ASCII digits costs one token per three digits (rounded up);
//   - any other ASCII character (punctuation, symbols) costs 1;
//   - any other rune costs 1 (CJK, symbols), or 2 above U+FFFF (emoji);
//   - one space directly before a word, digit run, punctuation or other rune
//     is free (it belongs to that token); other runs of spaces and tabs cost
//     one token per four characters (rounded up);
//   - a run of newlines costs one token per two (rounded up); carriage
//     returns count as newlines.
//
// Invalid UTF-8 bytes cost one token each. CountTokens("") is 0, and for
// texts a and b that neither end nor start with a newline,
// CountTokens(a+"\n"+b) == CountTokens(a)+1+CountTokens(b).
func CountTokens(text string) int {
	n := 0
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\n' || c == '\r':
			j := i
			for j < len(text) && (text[j] == '\n' || text[j] == '\r') {
				j++
			}
			n += (j - i + 1) / 2
			i = j
		case c == ' ' || c == '\t':
			j := i
			for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
			run := j - i
			if j < len(text) && text[j] != '\n' && text[j] != '\r' {
				run-- // the last space belongs to what follows
			}
			n += (run + 3) / 4
			i = j
		case isDigit(c):
			j := i
			for j < len(text) && isDigit(text[j]) {
				j++
			}
			n += (j - i + 2) / 3
			i = j
		case isASCIILetter(c) || c >= utf8.RuneSelf && isWordRune(text[i:]):
			chars, extra, j := 0, 0, i
			for j < len(text) {
				if isASCIILetter(text[j]) {
					chars++
					j++
					continue
				}
				if text[j] < utf8.RuneSelf || !isWordRune(text[j:]) {
					break
				}
				_, size := utf8.DecodeRuneInString(text[j:])
				chars++
				extra++
				j += size
			}
			n += 1 + (chars-1)/6 + extra
			i = j
		case c < utf8.RuneSelf:
			n++
			i++
		default:
			r, size := utf8.DecodeRuneInString(text[i:])
			if r > 0xFFFF {
				n += 2
			} else {
				n++
			}
			i += size
		}
	}
	return n
}

func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isWordRune reports whether s starts with a Latin-1 or Latin Extended
// letter (U+00C0..U+024F, except the multiplication and division signs).
func isWordRune(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	if size <= 1 {
		return false
	}
	return r >= 0xC0 && r <= 0x24F && r != 0xD7 && r != 0xF7
}
