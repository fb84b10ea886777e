package sse

// AppendEvent appends one event in wire form to dst and returns the extended
// slice:
//
//	event: typ
//	data: first line
//	data: second line
//	(blank line)
//
// The "event:" line is omitted when typ is "". data is split into one
// "data:" line per line, at LF, CRLF or CR, so that a parser reading the
// output gets back data with its line endings turned into LF (data without
// CR comes back byte for byte). Empty data is written as a single empty
// "data:" line, which still dispatches an event. CR and LF inside typ cannot
// be represented and are dropped.
func AppendEvent(dst []byte, typ string, data []byte) []byte {
	if typ != "" {
		dst = append(dst, "event: "...)
		for i := 0; i < len(typ); i++ {
			if c := typ[i]; c != '\r' && c != '\n' {
				dst = append(dst, c)
			}
		}
		dst = append(dst, '\n')
	}
	for {
		dst = append(dst, "data: "...)
		i := indexLineEnd(data)
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// indexLineEnd returns the index of the first CR or LF in b, or -1.
func indexLineEnd(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}
