// Package pgtest starts a throw-away PostgreSQL server for tests: initdb
// and postgres from Debian's postgresql package (make postgres installs
// it), in a temporary directory, on a free loopback port, with trust
// authentication and durability off (fsync=off: a test's data need not
// survive a crash). Under CI=true a missing PostgreSQL fails the test;
// elsewhere it skips with one line.
package pgtest
