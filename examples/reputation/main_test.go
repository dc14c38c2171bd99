package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func output(t *testing.T) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return out.String()
}

// The figures below are worked out by hand. Wilson lower bound, z = 1.96:
// with every rating positive it is 1/(1 + z²/n), so 0.610, 0.646, 0.676
// and 0.701 for n = 6, 7, 8, 9; with 6 of 7 positive it is
// (6/7 + z²/14 − z·√(6/49/7 + z²/196))/(1 + z²/7) = 0.487.
// Beta expectation (1+P)/(2+P+N): a postcard weighs log10(15) = 1.1761,
// the pen log10(130) = 2.1139, the notebook log10(48) = 1.6812, each times
// 0.98^(age/30 days). On Jan 14 the six counted postcards, 3 to 8 days old,
// sum to P = 7.030, so 8.030/9.030 = 0.889. On Jan 15 the pen's negative
// adds N = 2.114 and P is 7.026: 8.026/11.140 = 0.720.
func TestRun(t *testing.T) {
	out := output(t)
	for _, want := range []string{
		// The pair cap: six count, the seventh and eighth do not.
		"Jan 11  postcard-6  mei rates paper-crane positive: counted, +1\n",
		"Jan 12  postcard-7  mei rates paper-crane positive: not counted, the pair's monthly cap on points was reached\n",
		"Jan 13  postcard-8  mei rates paper-crane positive: not counted, the pair's monthly cap on points was reached\n",
		"Jan 14  paper-crane: 6 points (Heart 1), 6/0/0, positive rate 100.0%, Wilson 0.610, Beta 0.889\n",
		// The negative takes a point and the rate falls to 6/7; revised,
		// the point comes back.
		"Jan 15  pen-1       lin rates paper-crane negative: counted, -1\n",
		"Jan 15  paper-crane: 5 points (Heart 1), 6/0/1, positive rate 85.7%, Wilson 0.487, Beta 0.720\n",
		"Jan 22  lin revises her rating: negative to positive, counted, +1\n",
		"Jan 22  paper-crane: 7 points (Heart 1), 7/0/0, positive rate 100.0%, Wilson 0.646, Beta 0.910\n",
		// Half a yuan is below the minimum of 1.00.
		"Jan 23  sticker-1   lin rates paper-crane positive: not counted, the escrow is worth less than the minimum that counts\n",
		// tao's default positive, dated when his window closed.
		"Jan 30  paper-crane: 8 points (Heart 1), 8/0/0, positive rate 100.0%, Wilson 0.676, Beta 0.921\n",
		// A new month: mei's rating counts again.
		"Feb 03  postcard-9  mei rates paper-crane positive: counted, +1\n",
		"Feb 03  paper-crane: 9 points (Heart 1), 9/0/0, positive rate 100.0%, Wilson 0.701, Beta 0.928\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no line %q in the output:\n%s", want, out)
		}
	}
}

// Explain lists all twelve ratings, oldest first, including those that do
// not count, each with its reason.
func TestExplain(t *testing.T) {
	_, explain, ok := strings.Cut(output(t), "== Explain")
	if !ok {
		t.Fatal("no Explain section")
	}
	lines := strings.Split(strings.TrimSpace(explain), "\n")[1:]
	var rows, reasons []string
	for _, l := range lines {
		if strings.HasPrefix(l, " ") {
			reasons = append(reasons, strings.TrimSpace(l))
			continue
		}
		f := strings.Fields(l)
		rows = append(rows, f[2]+" "+f[3]+" "+f[len(f)-1])
	}
	// Escrow, rater and the weight each rating carries on Feb 3:
	// log10(10 + price) × 0.98^(days old / 30), 0 when it does not count.
	wantRows := []string{
		"postcard-1 mei 1.154", "postcard-2 mei 1.155", "postcard-3 mei 1.156",
		"postcard-4 mei 1.156", "postcard-5 mei 1.157", "postcard-6 mei 1.158",
		"postcard-7 mei 0.000", "postcard-8 mei 0.000",
		"pen-1 lin 2.087", "sticker-1 lin 0.000", "notebook-1 tao 1.676", "postcard-9 mei 1.176",
	}
	if strings.Join(rows, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("Explain rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
	}
	wantReasons := []string{
		"the pair's monthly cap on points was reached",
		"the pair's monthly cap on points was reached",
		"the escrow is worth less than the minimum that counts",
	}
	if strings.Join(reasons, "\n") != strings.Join(wantReasons, "\n") {
		t.Errorf("reasons not counted:\n%s\nwant:\n%s", strings.Join(reasons, "\n"), strings.Join(wantReasons, "\n"))
	}
	for _, want := range []string{"positive (revised from negative)", "positive (default)"} {
		if !strings.Contains(explain, want) {
			t.Errorf("Explain does not show %q", want)
		}
	}
}

type fullWriter struct{}

var errFull = errors.New("no space left on device")

func (fullWriter) Write([]byte) (int, error) { return 0, errFull }

// TestOutputLost: output that cannot be written fails the run, so the
// program exits 1 instead of 0 with nothing shown.
func TestOutputLost(t *testing.T) {
	if err := run(fullWriter{}); !errors.Is(err, errFull) {
		t.Errorf("run with its output lost = %v, want the write's error", err)
	}
}

// TestArguments: the program takes no arguments. A flag or an argument
// is refused, rather than ignored while the program runs as if it were
// not there, as the other examples refuse theirs; -h asks for the usage.
func TestArguments(t *testing.T) {
	for _, args := range [][]string{{"-v"}, {"-seed", "3"}, {"extra"}} {
		var out bytes.Buffer
		if err := parseArgs(&out, args); err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("parseArgs(%q) = %v, want an error", args, err)
		}
	}
	var out bytes.Buffer
	if err := parseArgs(&out, []string{"-h"}); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "go run ./examples/reputation") {
		t.Errorf("parseArgs(-h) = %v, printed %q; want flag.ErrHelp and the usage", err, out.String())
	}
	if err := parseArgs(&out, nil); err != nil {
		t.Errorf("parseArgs() = %v, want nil", err)
	}
}
