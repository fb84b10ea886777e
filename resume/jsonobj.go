package resume

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/streamgate/streamgate/sse"
)

// object is a JSON object kept as its members in order, each value as its
// raw bytes, so that a body or an event can be edited without disturbing
// anything it does not touch: unknown fields, number formatting, key order.
type object struct {
	members []member
	// fold makes member names match case-insensitively, as encoding/json
	// matches them. Events are read that way, to agree with the sse stream
	// models; request bodies are matched exactly, as the APIs do.
	fold bool
}

type member struct {
	key    string // decoded key
	rawKey []byte // the key as written, quotes included
	val    []byte // the raw value
}

// parseEventObject is parseObject with member names matched
// case-insensitively.
func parseEventObject(b []byte) (*object, bool) {
	o, ok := parseObject(b)
	if ok {
		o.fold = true
	}
	return o, ok
}

// parseObject splits a JSON object into its members. It reports false for
// anything that is not one valid JSON object (surrounding white space
// allowed).
func parseObject(b []byte) (*object, bool) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' || !json.Valid(b) {
		return nil, false
	}
	o := &object{}
	i := skipSpace(b, 1)
	if b[i] == '}' {
		return o, true
	}
	for {
		ks := i
		i = endOfString(b, i)
		rawKey := b[ks:i]
		i = skipSpace(b, i)
		i = skipSpace(b, i+1) // the colon
		vs := i
		i = endOfValue(b, i)
		o.members = append(o.members, member{key: decodeKey(rawKey), rawKey: rawKey, val: b[vs:i]})
		i = skipSpace(b, i)
		if b[i] == '}' {
			return o, true
		}
		i = skipSpace(b, i+1) // the comma
	}
}

// The scanners below run only on input json.Valid accepted, so they need
// not check for errors.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just after the string starting at b[i].
func endOfString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// endOfValue returns the index just after the value starting at b[i].
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = endOfString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(b)
	}
}

func decodeKey(raw []byte) string {
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// index returns the position of the last member named key (the one a
// decoder uses), or -1.
func (o *object) index(key string) int {
	for i := len(o.members) - 1; i >= 0; i-- {
		if o.match(o.members[i].key, key) {
			return i
		}
	}
	return -1
}

func (o *object) match(name, key string) bool {
	if o.fold {
		return strings.EqualFold(name, key)
	}
	return name == key
}

// get returns the raw value of key.
func (o *object) get(key string) ([]byte, bool) {
	if i := o.index(key); i >= 0 {
		return o.members[i].val, true
	}
	return nil, false
}

// set gives key the value val: the last member matching key takes key as
// its exact name and val as its value, and every other member matching key
// is dropped; the member is appended when none matches.
func (o *object) set(key string, val []byte) {
	i := o.index(key)
	if i < 0 {
		o.members = append(o.members, member{key: key, rawKey: appendString(nil, key), val: val})
		return
	}
	m := &o.members[i]
	if m.key != key {
		m.key, m.rawKey = key, appendString(nil, key)
	}
	m.val = val
	for j := i - 1; j >= 0; j-- {
		if o.match(o.members[j].key, key) {
			o.members = append(o.members[:j], o.members[j+1:]...)
		}
	}
}

// del removes every member matching key.
func (o *object) del(key string) {
	kept := o.members[:0]
	for _, m := range o.members {
		if !o.match(m.key, key) {
			kept = append(kept, m)
		}
	}
	o.members = kept
}

// appendTo appends the object in compact form (values as they were).
func (o *object) appendTo(dst []byte) []byte {
	dst = append(dst, '{')
	for i, m := range o.members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m.rawKey...)
		dst = append(dst, ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}')
}

// bytes returns the object in compact form.
func (o *object) bytes() []byte { return o.appendTo(nil) }

// getObject returns the member key parsed as an object.
func (o *object) getObject(key string) (*object, bool) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false
	}
	obj, ok := parseObject(raw)
	if ok {
		obj.fold = o.fold
	}
	return obj, ok
}

// getString returns the member key when it is a JSON string.
func (o *object) getString(key string) (string, bool) {
	raw, ok := o.get(key)
	if !ok {
		return "", false
	}
	return stringValue(raw)
}

// getInt returns the member key when it is a non-negative integer.
func (o *object) getInt(key string) (int64, bool) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false
	}
	return intValue(raw)
}

// stringValue decodes raw as a JSON string.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// intValue decodes raw as a non-negative integer.
func intValue(raw []byte) (int64, bool) {
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// isEmptyValue reports whether raw is null, "", [] or {}.
func isEmptyValue(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "null", `""`:
		return true
	}
	if len(raw) >= 2 && (raw[0] == '[' || raw[0] == '{') {
		return len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
	}
	return false
}

// splitArray splits a JSON array into its raw elements; false if raw is not
// one valid array.
func splitArray(raw []byte) ([][]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' || !json.Valid(raw) {
		return nil, false
	}
	var out [][]byte
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return out, true
	}
	for {
		vs := i
		i = endOfValue(raw, i)
		out = append(out, raw[vs:i])
		i = skipSpace(raw, i)
		if raw[i] == ']' {
			return out, true
		}
		i = skipSpace(raw, i+1)
	}
}

// joinArray renders elements as a compact JSON array.
func joinArray(elems [][]byte) []byte {
	dst := []byte{'['}
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e...)
	}
	return append(dst, ']')
}

// appendString appends s as a JSON string (see sse.AppendJSONString).
func appendString(dst []byte, s string) []byte { return sse.AppendJSONString(dst, s) }

// appendInt appends v in decimal.
func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }
