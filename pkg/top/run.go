package top

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options say what Run reads and where it draws.
type Options struct {
	// Query reads one sample from the daemon.
	Query func(ctx context.Context) (Sample, error)
	// Out is where frames go; a terminal gets a redrawn screen, anything
	// else plain lines, one block per refresh.
	Out io.Writer
	// In is read for `q` when Out is a terminal and In is one too.
	In       *os.File
	Interval time.Duration
	// Count stops after that many refreshes; 0 runs until ctx is done or
	// `q` is pressed.
	Count int
}

// Terminal control sequences: the alternate screen keeps the user's
// scrollback as it was, the cursor is hidden while drawing.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l"
	leaveScreen = "\x1b[?25h\x1b[?1049l"
	home        = "\x1b[H"
	clearToEnd  = "\x1b[J"
	clearLine   = "\x1b[K"
)

// Run refreshes until ctx is done, `q` is read, Count refreshes were shown,
// or the daemon stops answering (its error is returned). The terminal is
// restored however it ends.
func Run(ctx context.Context, o Options) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f, _ := o.Out.(*os.File)
	term := isTerminal(f)
	if term {
		if isTerminal(o.In) {
			restore, err := cbreak(o.In)
			if err != nil {
				return err
			}
			defer restore()
			go readQuit(o.In, cancel)
		}
		io.WriteString(o.Out, enterScreen)
		defer io.WriteString(o.Out, leaveScreen)
	}
	var prev *Sample
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		cur, err := o.Query(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		lines := Build(prev, cur).Lines(term)
		if term {
			var b strings.Builder
			b.WriteString(home)
			for _, l := range lines {
				b.WriteString(l + clearLine + "\r\n")
			}
			b.WriteString("press q to quit" + clearLine + clearToEnd)
			io.WriteString(o.Out, b.String())
		} else {
			fmt.Fprintln(o.Out, strings.Join(lines, "\n"))
			fmt.Fprintln(o.Out)
		}
		prev = &cur
		if o.Count > 0 && n >= o.Count {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}

func isTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// cbreak turns off line buffering and echo on f, so that a single `q` is
// read at once; signals stay on, so Ctrl-C arrives as SIGINT and ends Run
// through its context. restore puts back what was there.
func cbreak(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read the terminal's settings: %w", err)
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("set the terminal's mode: %w", err)
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// readQuit calls quit when `q` or Ctrl-C (should signals be off) is read,
// or the input ends.
func readQuit(in io.Reader, quit func()) {
	b := make([]byte, 1)
	for {
		n, err := in.Read(b)
		if err != nil || n == 1 && (b[0] == 'q' || b[0] == 'Q' || b[0] == 3) {
			quit()
			return
		}
	}
}
