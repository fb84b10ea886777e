package sim

import (
	"strconv"

	"github.com/streamgate/streamgate/sse"
)

// appendJSONString appends s as a JSON string (see sse.AppendJSONString).
func appendJSONString(b []byte, s string) []byte { return sse.AppendJSONString(b, s) }

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }
