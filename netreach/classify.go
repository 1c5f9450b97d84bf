package netreach

import (
	"context"
	"errors"
)

// Failure is the class of a Dial error, for a crawl outcome: whether the
// peer could not be reached (and how), or the proxy or bridge failed, which
// says nothing about the peer.
type Failure int

// Failure classes.
const (
	FailureNone        Failure = iota // not an error of this package
	FailureNotDialled                 // a *NotDialledError: nothing was dialled
	FailureRefused                    // the peer refused the connection
	FailureTimeout                    // the connect or the proxy's exchange timed out
	FailureUnreachable                // the peer cannot be reached (no route, unknown onion, …)
	FailureProxy                      // the proxy or the SAM bridge failed, not the peer
)

var failureNames = [...]string{FailureNone: "none", FailureNotDialled: "not_dialled", FailureRefused: "refused",
	FailureTimeout: "timeout", FailureUnreachable: "unreachable", FailureProxy: "proxy_failed"}

// String returns the class's name, as a crawl outcome would spell it.
func (f Failure) String() string {
	if f >= 0 && int(f) < len(failureNames) {
		return failureNames[f]
	}
	return "failure(?)"
}

// failures is the one table of sentinel → class, in the order Classify
// tries them.
var failures = []struct {
	err   error
	class Failure
}{
	{ErrSOCKSConnectionRefused, FailureRefused},
	{ErrSOCKSTTLExpired, FailureTimeout},
	{ErrSOCKSOnionIntroTimeout, FailureTimeout},
	{ErrSOCKSGeneralFailure, FailureUnreachable}, // Tor's answer for most failures without ExtendedErrors
	{ErrSOCKSNetworkUnreachable, FailureUnreachable},
	{ErrSOCKSHostUnreachable, FailureUnreachable},
	{ErrSOCKSOnionNotFound, FailureUnreachable},
	{ErrSOCKSOnionInvalid, FailureUnreachable},
	{ErrSOCKSOnionIntroFailed, FailureUnreachable},
	{ErrSOCKSOnionRendFailed, FailureUnreachable},
	{ErrSOCKSOnionMissingAuth, FailureUnreachable},
	{ErrSOCKSOnionBadAuth, FailureUnreachable},
	{ErrSOCKSOnionBadAddress, FailureUnreachable},
	{ErrSOCKSNotAllowed, FailureProxy},
	{ErrSOCKSCommandNotSupported, FailureProxy},
	{ErrSOCKSAddressNotSupported, FailureProxy},
	{ErrSOCKSUnknownReply, FailureProxy},
	{ErrSOCKSNoAcceptableMethod, FailureProxy},
	{ErrSOCKSAuthFailed, FailureProxy},
	{ErrSOCKSProtocol, FailureProxy},
	{ErrSOCKSProxyUnreachable, FailureProxy},
	// As Bitcoin Core's i2p.cpp: CANT_REACH_PEER and TIMEOUT are the
	// peer's (and an unknown name); anything else is the bridge's.
	{ErrSAMCantReachPeer, FailureUnreachable},
	{ErrSAMTimeout, FailureTimeout},
	{ErrSAMKeyNotFound, FailureUnreachable},
	{ErrSAMInvalidKey, FailureProxy},
	{ErrSAMInvalidID, FailureProxy},
	{ErrSAMI2PError, FailureProxy},
	{ErrSAMDuplicatedID, FailureProxy},
	{ErrSAMDuplicatedDest, FailureProxy},
	{ErrSAMNoVersion, FailureProxy},
	{ErrSAMUnknownResult, FailureProxy},
	{ErrSAMProtocol, FailureProxy},
	{ErrSAMBridge, FailureProxy},
	{ErrSAMDestMismatch, FailureProxy},
	{ErrSAMClosed, FailureProxy},
}

// Classify returns the class of a Dial error and a short label for a crawl
// record: the sentinel's text without the target or the proxy ("socks: host
// unreachable", "i2p: can't reach peer"), the reason of a *NotDialledError,
// or "socks: timeout" / "i2p: timeout" when ctx ended the exchange. For an
// error not from this package (a direct dial's) it returns FailureNone and
// "": classify that as any TCP connect error. Check Classify first: a
// proxy that refuses our connection also unwraps to ECONNREFUSED, and is
// FailureProxy, not the peer's refusal.
func Classify(err error) (Failure, string) {
	var nd *NotDialledError
	var se *SOCKSError
	var ae *SAMError
	var prefix string
	var sentinel error
	switch {
	case err == nil:
		return FailureNone, ""
	case errors.As(err, &nd):
		return FailureNotDialled, nd.Reason
	case errors.As(err, &se):
		prefix, sentinel = "socks: ", se.Err
	case errors.As(err, &ae):
		prefix, sentinel = "i2p: ", ae.Err
	default:
		return FailureNone, ""
	}
	if errors.Is(sentinel, context.DeadlineExceeded) {
		return FailureTimeout, prefix + "timeout"
	}
	if errors.Is(sentinel, context.Canceled) {
		return FailureProxy, prefix + "canceled"
	}
	for _, f := range failures {
		if errors.Is(sentinel, f.err) {
			return f.class, f.err.Error()
		}
	}
	return FailureProxy, prefix + "error"
}
