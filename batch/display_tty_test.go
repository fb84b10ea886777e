//go:build linux

package batch

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: writes to tty are read from ptm.
func openPTY(t *testing.T) (ptm, tty *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		ptm.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		ptm.Close()
		t.Skipf("ptsname: %v", e)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Skipf("opening the terminal side: %v", err)
	}
	// A new terminal is 0x0; give it the size of a window.
	ws := struct{ rows, cols, x, y uint16 }{24, 120, 0, 0}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, tty.Fd(), syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws))); e != 0 {
		t.Fatalf("setting the window size: %v", e)
	}
	return ptm, tty
}

func TestDisplayBarOnATerminal(t *testing.T) {
	ptm, tty := openPTY(t)
	defer ptm.Close()
	var mu sync.Mutex
	var b bytes.Buffer
	seen := make(chan struct{}) // closed once the finished bar has arrived
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		closed := false
		for {
			n, err := ptm.Read(buf)
			mu.Lock()
			b.Write(buf[:n])
			if !closed && strings.Contains(b.String(), "10/10") {
				close(seen)
				closed = true
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if !IsTerminal(tty) {
		t.Fatal("IsTerminal(pty) = false")
	}
	d := NewDisplay(tty, DisplayAuto, 0)
	if d.Mode() != DisplayBar {
		t.Fatalf("mode on a terminal %v, want DisplayBar", d.Mode())
	}
	track := d.Track("streamgate")
	track(sampleProgress(4, time.Second, false))
	track(sampleProgress(10, 2*time.Second, true))
	d.Close()
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
	}
	tty.Close()
	ptm.Close()
	<-readDone
	out := b.String()
	if !strings.Contains(out, "10/10") || !strings.Contains(out, "812 tok/s") {
		t.Fatalf("terminal output %q", out)
	}
}
