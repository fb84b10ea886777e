// Command overhead measures what streamgate proxy adds to streaming
// requests (the "overhead" scenario of docs/BENCHMARKS.md). It starts a
// minimal fast SSE upstream and a proxy in front of it as separate
// processes (and nginx as a neutral reverse proxy, when installed), then
// opens N concurrent Anthropic-format streams against each target,
// interleaved, and reports per target: time to first byte and inter-event
// delivery latency (from the upstream's send time, carried in each event,
// to the client's receipt), p50 and p99, the difference to direct, the
// proxy's resident memory with the streams open and its CPU time per
// event, and its mean admission wait (read from its /metrics).
//
//	go run ./proxy/overhead -streams 1,16,64,1000 -repeats 3 -events 10 -interval 50ms
//
// -proxy-cpuprofile FILE writes a CPU profile of the proxy process,
// -proxy-gomemlimit sets its GOMEMLIMIT, and OVERHEAD_PPROF_ADDR=ADDR in
// the environment serves net/http/pprof from it (for heap profiles while
// streams are open). Results are recorded in docs/BENCHMARKS.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/metrics"
	"github.com/streamgate/streamgate/proxy"
)

func main() {
	role := flag.String("role", "", "internal: run as the upstream or the proxy process")
	listen := flag.String("listen", "127.0.0.1:0", "internal: listen address of a role")
	upstream := flag.String("upstream", "", "internal: upstream URL of the proxy role")
	streams := flag.String("streams", "1,16,64,1000", "comma-separated concurrency levels")
	events := flag.Int("events", 20, "content events per stream")
	interval := flag.Duration("interval", 100*time.Millisecond, "time between two events of a stream")
	repeats := flag.Int("repeats", 3, "runs per target and concurrency, interleaved")
	minStreams := flag.Int("min-streams", 40, "at low concurrency, repeat runs until at least this many streams were measured per target")
	useNginx := flag.Bool("nginx", true, "also measure through nginx when it is installed")
	cpuProfile := flag.String("proxy-cpuprofile", "", "write a CPU profile of the proxy process to this file")
	flag.String("proxy-gomemlimit", "", "GOMEMLIMIT of the proxy process (e.g. 80MiB); empty: the Go default")
	flag.Parse()
	var err error
	switch *role {
	case "upstream":
		err = serveUpstream(*listen, *events, *interval)
	case "proxy":
		err = serveProxy(*listen, *upstream, *cpuProfile)
	case "":
		err = orchestrate(*streams, *repeats, *minStreams, *useNginx)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
}

// ---- upstream role ----

func serveUpstream(listen string, events int, interval time.Duration) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	const start = `event: message_start
data: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

`
	end := fmt.Sprintf(`event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":%d}}

event: message_stop
data: {"type":"message_stop"}

`, events+1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hd := w.Header()
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("Request-Id", "req_bench")
		reset := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
		for _, fam := range []string{"requests", "input-tokens", "output-tokens", "tokens"} {
			hd.Set("Anthropic-Ratelimit-"+fam+"-Limit", "1000000000")
			hd.Set("Anthropic-Ratelimit-"+fam+"-Remaining", "999999000")
			hd.Set("Anthropic-Ratelimit-"+fam+"-Reset", reset)
		}
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, start)
		_ = rc.Flush()
		t := time.NewTicker(interval)
		defer t.Stop()
		buf := make([]byte, 0, 256)
		for range events {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
			buf = append(buf[:0], "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""...)
			buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
			buf = append(buf, " \"}}\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return
			}
			_ = rc.Flush()
		}
		_, _ = io.WriteString(w, end)
	})
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return (&http.Server{Handler: h}).Serve(ln)
}

// ---- proxy role ----

func serveProxy(listen, upstream, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		// The orchestrator ends the proxy with SIGTERM when it wants the
		// profile.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	p, err := proxy.New(proxy.Config{
		Listen:    listen,
		Anthropic: proxy.Upstream{URL: upstream},
		// No admission limits get in the way: this measures the proxy's
		// own cost, not scheduling.
		Gate: gate.Config{MaxQueue: 20_000, MaxConcurrency: 10_000, InitialConcurrency: 10_000,
			InitialOpenRate: math.Inf(1), MinOpenRate: 1e6, MaxOpenRate: math.Inf(1)},
		// Request logs are formatted as in production, then discarded.
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics: metrics.New(),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if addr := os.Getenv("OVERHEAD_PPROF_ADDR"); addr != "" {
		// For memory and CPU profiles of the proxy under load.
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return p.Serve(context.Background(), ln)
}

// ---- orchestration ----

type child struct {
	cmd  *exec.Cmd
	addr string
}

func startRole(env []string, args ...string) (*child, error) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%v: %w", args, err)
	}
	return &child{cmd: cmd, addr: strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))}, nil
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-done
}

type target struct {
	name string
	url  string
	pids func() []int // processes whose memory and CPU are reported
	// admitted reads the proxy's admission-wait histogram (total seconds,
	// count), when the target is streamgate.
	admitted func() (float64, float64)
}

func orchestrate(streamList string, repeats, minStreams int, useNginx bool) error {
	var levels []int
	for _, s := range strings.Split(streamList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -streams %q", streamList)
		}
		levels = append(levels, n)
	}
	client0 := &http.Client{Timeout: 10 * time.Second}
	up, err := startRole(nil, "-role", "upstream", "-events", strconv.Itoa(eventsFlag()), "-interval", intervalFlag().String())
	if err != nil {
		return err
	}
	defer up.stop()
	pxArgs := []string{"-role", "proxy", "-upstream", "http://" + up.addr}
	if p := flag.Lookup("proxy-cpuprofile").Value.String(); p != "" {
		pxArgs = append(pxArgs, "-proxy-cpuprofile", p)
	}
	var pxEnv []string
	if l := flag.Lookup("proxy-gomemlimit").Value.String(); l != "" {
		pxEnv = append(pxEnv, "GOMEMLIMIT="+l)
	}
	px, err := startRole(pxEnv, pxArgs...)
	if err != nil {
		return err
	}
	defer px.stop()
	targets := []target{
		{"direct", "http://" + up.addr, nil, nil},
		{"streamgate", "http://" + px.addr, func() []int { return []int{px.cmd.Process.Pid} }, func() (float64, float64) {
			return admissionWait(client0, "http://"+px.addr+"/metrics")
		}},
	}
	if useNginx {
		if ng, err := startNginx(up.addr); err != nil {
			fmt.Fprintln(os.Stderr, "overhead: nginx not measured:", err)
		} else {
			defer ng.stop()
			targets = append(targets, target{"nginx", ng.url, ng.pids, nil})
		}
	}
	fmt.Printf("# overhead: %d cores, %d events per stream every %s, at least %d runs and %d streams per target and level, %s\n",
		runtimeCores(), eventsFlag(), intervalFlag(), repeats, minStreams, time.Now().UTC().Format("2006-01-02"))
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
	// Warm up every path (connections, the proxy's learned limits).
	for _, t := range targets {
		if _, err := runOnce(client, t, 4); err != nil {
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
	}
	// Percentiles are over every sample of the interleaved runs; memory
	// and CPU are medians over the runs.
	type agg struct{ ttfb, events, rss, cpuPerEvent, admitSum, admitN []float64 }
	for _, c := range levels {
		res := map[string]*agg{}
		runs := max(repeats, (minStreams+c-1)/c)
		for range runs {
			for _, t := range targets {
				var s0, n0 float64
				if t.admitted != nil {
					s0, n0 = t.admitted()
				}
				m, err := runOnce(client, t, c)
				if err != nil {
					return fmt.Errorf("%s at %d streams: %w", t.name, c, err)
				}
				a := res[t.name]
				if a == nil {
					a = &agg{}
					res[t.name] = a
				}
				if t.admitted != nil {
					s1, n1 := t.admitted()
					a.admitSum = append(a.admitSum, s1-s0)
					a.admitN = append(a.admitN, n1-n0)
				}
				a.ttfb = append(a.ttfb, m.ttfb...)
				a.events = append(a.events, m.events...)
				a.rss = append(a.rss, m.rssMB)
				a.cpuPerEvent = append(a.cpuPerEvent, m.cpuPerEventUS)
			}
			client.CloseIdleConnections()
		}
		fmt.Printf("\n## %d concurrent streams (%d runs per target; times in ms)\n\n", c, runs)
		fmt.Println("| target | TTFB p50 | TTFB p99 | event p50 | event p99 | added TTFB p50 / p99 | added event p50 / p99 | peak RSS MB | CPU µs/event |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|")
		d := res["direct"]
		for _, t := range targets {
			a := res[t.name]
			added, addedEv := "—", "—"
			if t.name != "direct" {
				added = fmt.Sprintf("%+.3f / %+.3f", pct(a.ttfb, 50)-pct(d.ttfb, 50), pct(a.ttfb, 99)-pct(d.ttfb, 99))
				addedEv = fmt.Sprintf("%+.3f / %+.3f", pct(a.events, 50)-pct(d.events, 50), pct(a.events, 99)-pct(d.events, 99))
			}
			rss, cpu := "—", "—"
			if t.pids != nil {
				rss, cpu = fmt.Sprintf("%.1f", med(a.rss)), fmt.Sprintf("%.1f", med(a.cpuPerEvent))
			}
			fmt.Printf("| %s | %.3f | %.3f | %.3f | %.3f | %s | %s | %s | %s |\n",
				t.name, pct(a.ttfb, 50), pct(a.ttfb, 99), pct(a.events, 50), pct(a.events, 99), added, addedEv, rss, cpu)
		}
		if a := res["streamgate"]; a != nil {
			var sum, n float64
			for i := range a.admitSum {
				sum += a.admitSum[i]
				n += a.admitN[i]
			}
			if n > 0 {
				fmt.Printf("\nstreamgate mean admission wait (queueing in the gate, part of its TTFB): %.3f ms\n", sum/n*1000)
			}
		}
	}
	return nil
}

// admissionWait reads the total and count of the proxy's
// streamgate_admission_wait_seconds histogram.
func admissionWait(c *http.Client, url string) (sum, count float64) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, "streamgate_admission_wait_seconds_sum"):
			dst = &sum
		case strings.HasPrefix(line, "streamgate_admission_wait_seconds_count"):
			dst = &count
		default:
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i >= 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			*dst += v
		}
	}
	return sum, count
}

func eventsFlag() int {
	n, _ := strconv.Atoi(flag.Lookup("events").Value.String())
	return n
}

func intervalFlag() time.Duration {
	d, _ := time.ParseDuration(flag.Lookup("interval").Value.String())
	return d
}

type measurement struct {
	ttfb, events  []float64 // ms
	rssMB         float64   // peak resident memory of the target's processes during the run
	cpuPerEventUS float64   // CPU time of the target's processes per event delivered
}

// runOnce opens c streams at once against t and reads them to the end.
func runOnce(client *http.Client, t target, c int) (measurement, error) {
	var m measurement
	var mu sync.Mutex
	var firstErr error
	start := make(chan struct{})
	var wg sync.WaitGroup
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"measure the overhead"}]}`)
	for range c {
		wg.Go(func() {
			<-start
			ttfb, lats, err := stream(client, t.url, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			m.ttfb = append(m.ttfb, ttfb)
			m.events = append(m.events, lats...)
		})
	}
	var pids []int
	if t.pids != nil {
		pids = t.pids()
	}
	cpu0 := cpuTime(pids)
	stopSampling := make(chan struct{})
	sampled := make(chan float64, 1)
	go func() {
		peak := 0.0
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				peak = math.Max(peak, rssMB(pids))
			case <-stopSampling:
				sampled <- peak
				return
			}
		}
	}()
	close(start)
	wg.Wait()
	close(stopSampling)
	m.rssMB = <-sampled
	if n := len(m.events); n > 0 {
		m.cpuPerEventUS = (cpuTime(pids) - cpu0).Seconds() * 1e6 / float64(n)
	}
	if firstErr != nil {
		return m, firstErr
	}
	if len(m.ttfb) != c {
		return m, fmt.Errorf("%d of %d streams completed", len(m.ttfb), c)
	}
	return m, nil
}

// stream sends one streaming request and returns its time to first byte
// and the delivery latency of each content event, in milliseconds.
func stream(client *http.Client, url string, body []byte) (float64, []float64, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Api-Key", "sk-ant-overhead-benchmark")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	var ttfb float64
	var lats []float64
	marker := []byte(`"text":"`)
	complete := false
	for {
		line, err := br.ReadSlice('\n')
		if ttfb == 0 && len(line) > 0 {
			ttfb = ms(time.Since(t0))
		}
		if i := bytes.Index(line, marker); i >= 0 && bytes.Contains(line, []byte("content_block_delta")) {
			now := time.Now().UnixNano()
			rest := line[i+len(marker):]
			if j := bytes.IndexByte(rest, ' '); j > 0 {
				if sent, perr := strconv.ParseInt(string(rest[:j]), 10, 64); perr == nil {
					lats = append(lats, float64(now-sent)/1e6)
				}
			}
		}
		if bytes.Contains(line, []byte(`"message_stop"`)) {
			complete = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
	}
	if !complete {
		return 0, nil, fmt.Errorf("stream incomplete")
	}
	return ttfb, lats, nil
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func med(v []float64) float64 { return pct(v, 50) }

func runtimeCores() int { return runtime.NumCPU() }

// rssMB is the summed VmRSS of pids.
func rssMB(pids []int) float64 {
	total := 0.0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				total += kb / 1024
			}
		}
	}
	return total
}

// cpuTime is the summed CPU time of every thread of pids, from
// /proc/PID/task/TID/schedstat (nanoseconds, unlike the clock ticks of
// /proc/PID/stat).
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, path := range tasks {
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// ---- nginx ----

type nginx struct {
	cmd *exec.Cmd
	dir string
	url string
}

func startNginx(upstream string) (*nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("not installed")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "overhead-nginx")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
daemon off;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream bench { server %[2]s; keepalive 2048; }
  server {
    listen %[3]s backlog=4096;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`, dir, upstream, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &nginx{cmd: cmd, dir: dir, url: "http://" + addr}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("did not start")
}

// pids returns the nginx master and its workers.
func (n *nginx) pids() []int {
	pids := []int{n.cmd.Process.Pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.cmd.Process.Pid, n.cmd.Process.Pid))
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// stop ends nginx with SIGTERM, on which the master stops its workers
// (killing the master alone would orphan them).
func (n *nginx) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		for _, pid := range n.pids() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
	_ = os.RemoveAll(n.dir)
}
