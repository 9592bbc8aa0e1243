package psdeploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/planetscale/planetscale-go/planetscale"

	"github.com/ternhq/tern/engine"
)

// Error classes of PlanetScale failures.
const (
	// Transient.
	ClassRetry        = "ps_retry"              // the API's "unprocessable": try again
	ClassInternal     = "ps_internal"           // 5xx or an answer not in the error shape
	ClassRateLimited  = "ps_rate_limited"       // HTTP 429
	ClassUnavailable  = "ps_unavailable"        // HTTP 502, 503, 504
	ClassMalformed    = "ps_malformed_response" // a body that is not JSON
	ClassStateTimeout = "ps_timeout"            // a branch or deploy request stuck in one state

	// Permanent.
	ClassNotFound       = "ps_not_found"
	ClassPermission     = "ps_permission"
	ClassInvalid        = "ps_invalid"
	ClassDeployFailed   = "ps_deploy_failed"
	ClassSchemaConflict = "ps_schema_conflict"
)

// statusKey carries a *statusBox in a request's context so the HTTP status
// of a planetscale-go call survives its error decoding (which drops it for
// bodies with an unknown code).
type statusKey struct{}

type statusBox struct{ code int }

// statusTransport records each response's status in the request's box.
type statusTransport struct{ base http.RoundTripper }

func (t statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		if b, ok := r.Context().Value(statusKey{}).(*statusBox); ok {
			b.code = resp.StatusCode
		}
	}
	return resp, err
}

// call runs one API call and returns its error classified, prefixed with
// op. An error whose text is empty (some error bodies carry a code and no
// message) names the HTTP status instead.
func call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	box := &statusBox{}
	err := f(context.WithValue(ctx, statusKey{}, box))
	if err == nil {
		return nil
	}
	if err.Error() == "" && box.code != 0 {
		err = fmt.Errorf("planetscale: %s: HTTP %d %s%w", op, box.code, http.StatusText(box.code), err)
	} else {
		err = fmt.Errorf("planetscale: %s: %w", op, err)
	}
	return classify(err, box.code)
}

// classify wraps an API error in an *engine.RetryableError or
// *engine.PermanentError. status is the HTTP status when one was received
// (0 otherwise).
//
// planetscale-go turns an error body into a *planetscale.Error whose Code
// comes from the body's code (not_found, unauthorized, bad_request or
// invalid_params, unprocessable); any other code gives an empty Code, a
// body that is not JSON gives ErrResponseMalformed, a JSON body without
// code and message gives ErrInternal, and a JSON body of another type
// (an array, a string) gives a plain decoding error. So: 429 and 502-504
// are transient whatever the body says; a code the body stated explicitly
// decides next (422 "unprocessable" is ErrRetry, transient); everything
// else is judged by its HTTP status. Errors without a status (timeouts,
// lost connections, a cancelled context) go through engine.ClassifyMySQL,
// which knows them.
func classify(err error, status int) error {
	retry := func(class string) error { return &engine.RetryableError{Class: class, Err: err} }
	perm := func(class string) error { return &engine.PermanentError{Class: class, Err: err} }
	switch status {
	case http.StatusTooManyRequests:
		return retry(ClassRateLimited)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return retry(ClassUnavailable)
	}
	var pe *planetscale.Error
	isPE := errors.As(err, &pe)
	if isPE {
		switch pe.Code {
		case planetscale.ErrRetry:
			return retry(ClassRetry)
		case planetscale.ErrNotFound:
			return perm(ClassNotFound)
		case planetscale.ErrPermission:
			return perm(ClassPermission)
		case planetscale.ErrInvalid:
			return perm(ClassInvalid)
		}
	}
	if status == 0 {
		if isPE {
			// Not seen: planetscale-go only makes errors from answers.
			switch pe.Code {
			case planetscale.ErrResponseMalformed:
				return retry(ClassMalformed)
			case planetscale.ErrInternal:
				return retry(ClassInternal)
			}
			return perm(ClassInvalid)
		}
		return engine.ClassifyMySQL(err)
	}
	switch {
	case status < 400:
		// A success whose body could not be read (a proxy's page, a
		// truncated answer): the call may have worked; the next attempt
		// finds out.
		return retry(ClassMalformed)
	case status >= 500:
		return retry(ClassInternal)
	case status == http.StatusUnprocessableEntity:
		return retry(ClassRetry)
	case status == http.StatusRequestTimeout:
		return retry(ClassStateTimeout)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return perm(ClassPermission)
	case status == http.StatusNotFound || status == http.StatusGone:
		return perm(ClassNotFound)
	default:
		return perm(ClassInvalid)
	}
}
