package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tests run against a real PostgreSQL server: the one PGSTORE_DSN
// names, or else a throwaway one that TestMain starts from the
// PostgreSQL binaries on this machine and stops at the end. Each test
// store gets a schema of its own, dropped when its test ends, so tests run
// in parallel and leave nothing behind.

// dsn is the server the tests use.
var dsn string

// admin is a pool on it for making and dropping schemas.
var admin *pgxpool.Pool

// howToRun says how to give the tests a server; it is the message of a
// skip, or of a failure.
const howToRun = `pgstore's tests need a PostgreSQL server. Either name one:
  PGSTORE_DSN='postgres://user:pass@localhost:5432/db?sslmode=disable' go test ./storage/pgstore/...
or install PostgreSQL's server binaries (initdb, pg_ctl, postgres), so that the tests start a
throwaway cluster of their own, and run them again:
  Debian/Ubuntu: apt-get install postgresql    (binaries in /usr/lib/postgresql/<version>/bin)
  macOS:         brew install postgresql
  elsewhere:     PGSTORE_PGBIN=/path/to/postgresql/bin go test ./storage/pgstore/...
(As root, the cluster belongs to the user postgres, which must exist.)`

// noServer, if not empty, is why there is no server: the tests skip with
// it. It is set only outside CI and only when the machine has no
// PostgreSQL at all; a server that is there and fails is a failure.
var noServer string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dsn = os.Getenv("PGSTORE_DSN")
	if dsn == "" {
		srv, err := startServer()
		if errors.Is(err, errNoBinaries) && os.Getenv("CI") == "" {
			// Said once here, and by every test as it skips (seen with -v).
			noServer = err.Error()
			fmt.Fprintf(os.Stderr, "pgstore: skipping the tests: %s\n\n%s\n", noServer, howToRun)
			return m.Run()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgstore: cannot start a PostgreSQL server for the tests: %v\n\n%s\n", err, howToRun)
			return 1
		}
		defer srv.stop()
		dsn = srv.dsn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if admin, err = pgxpool.New(ctx, dsn); err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgstore: cannot reach the test server: %v\n\n%s\n", err, howToRun)
		return 1
	}
	defer admin.Close()
	return m.Run()
}

// needServer skips t when there is no server to run it on.
func needServer(t testing.TB) {
	t.Helper()
	if noServer != "" {
		t.Skipf("%s\n%s", noServer, howToRun)
	}
}

// server is a throwaway PostgreSQL cluster in a temporary directory,
// listening only on a Unix socket there.
type server struct {
	dir   string
	bin   string
	as    []string // the command prefix that runs a program as the cluster's owner
	dsn   string
	owner string
	// settings are extra server settings, "name=value".
	settings []string
}

// errNoBinaries is startServer's error when the machine has no
// PostgreSQL server binaries.
var errNoBinaries = errors.New("no PGSTORE_DSN, and initdb is not on PATH nor under /usr/lib/postgresql/*/bin")

// pgBin finds the directory of initdb: PGSTORE_PGBIN if set (and then
// only there), else on PATH, or where Debian's or Red Hat's packages put
// it.
func pgBin() (string, error) {
	if dir := os.Getenv("PGSTORE_PGBIN"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			return "", fmt.Errorf("%w (PGSTORE_PGBIN=%s has none)", errNoBinaries, dir)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		found, _ = filepath.Glob("/usr/pgsql-*/bin/initdb") // Red Hat's packages
	}
	if len(found) == 0 {
		return "", errNoBinaries
	}
	// The newest version: the glob sorts by name, and versions have two digits.
	return filepath.Dir(found[len(found)-1]), nil
}

// startServer initialises a cluster and starts it. Settings are extra
// server settings ("name=value"), applied after the throwaway defaults.
func startServer(settings ...string) (*server, error) {
	bin, err := pgBin()
	if err != nil {
		return nil, err
	}
	// Under /tmp when run as root: the server's user must reach the
	// directory, which a TMPDIR under /root would not let it, and a
	// socket's path must be short.
	parent := ""
	if os.Geteuid() == 0 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "pgstore-test-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, bin: bin, settings: settings}
	if err := s.init(); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// init makes the cluster's data directory.
func (s *server) init() error {
	s.owner = "postgres"
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: the cluster belongs to an
		// unprivileged user, postgres as Debian's packages make it.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, and there is no postgres user to own the cluster: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return fmt.Errorf("running as root, and runuser is missing to run the server as postgres: %w", err)
		}
		s.as = []string{runuser, "-u", "postgres", "--"}
	} else if u, err := user.Current(); err == nil {
		s.owner = u.Username
	}
	if out, err := s.cmd("initdb", "-D", s.data(), "-U", s.owner, "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	s.dsn = fmt.Sprintf("host=%s port=5432 user=%s dbname=postgres sslmode=disable", s.dir, s.owner)
	return nil
}

func (s *server) data() string { return filepath.Join(s.dir, "data") }

// start starts the server on the cluster and waits until it takes
// connections.
func (s *server) start() error {
	// A throwaway cluster: no fsync, and enough connections for the
	// parallel tests' pools. Without synchronous_commit an acknowledged
	// commit may still be in the server's memory when its processes end;
	// TestServerRestart turns it on. (Without fsync, commits outlive the
	// server's processes, not the machine.)
	opts := fmt.Sprintf("-k %s -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", s.dir)
	for _, kv := range s.settings {
		opts += " -c " + kv
	}
	log := filepath.Join(s.dir, "server.log")
	if out, err := s.cmd("pg_ctl", "-D", s.data(), "-l", log, "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		b, _ := os.ReadFile(log)
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, b)
	}
	return nil
}

// kill stops the server as a crash would: every server process ends at
// once, without a checkpoint, and the next start recovers from the WAL.
func (s *server) kill() error {
	if out, err := s.cmd("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// cmd returns the command that runs the PostgreSQL program name as the
// cluster's owner.
func (s *server) cmd(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, s.as...), filepath.Join(s.bin, name)), args...)
	c := exec.Command(argv[0], argv[1:]...)
	c.Dir = s.dir
	return c
}

func (s *server) stop() {
	if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err == nil {
		if err := s.kill(); err != nil {
			fmt.Fprintf(os.Stderr, "pgstore: stopping the test server: %v\n", err)
		}
	}
	os.RemoveAll(s.dir)
}

var schemas atomic.Int64

// newSchema returns the name of a new, empty schema that is dropped when
// t ends.
func newSchema(t testing.TB) string {
	t.Helper()
	needServer(t)
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), schemas.Add(1), strings.ToLower(safeName(t.Name())))
	if len(name) > 63 {
		name = name[:63]
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

// schemaPool returns a pool whose connections work in schema, which it
// makes if it is not there, with configure, if not nil, applied to the
// pool's configuration first. The pool closes when t ends.
func schemaPool(t testing.TB, schema string, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// TestNoServer runs this test binary again on a machine that, as far as
// it can tell, has no PostgreSQL: outside CI the tests skip, saying how
// to run them; in CI (the CI variable set) they fail, saying the same.
func TestNoServer(t *testing.T) {
	t.Parallel()
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStateNames$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "PGSTORE_DSN=", "PGSTORE_PGBIN="+t.TempDir(), "CI="+ci)
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), howToRun) {
			t.Errorf("CI=%q: the output does not say how to run the tests:\n%s", ci, out)
		}
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP: TestStateNames")):
			t.Errorf("CI unset: %v, want TestStateNames skipped and the run passed:\n%s", err, out)
		case ci != "" && err == nil:
			t.Errorf("CI=%q: the run passed without a server, want it failed:\n%s", ci, out)
		}
	}
}
