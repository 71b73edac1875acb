package agora

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCodeNamesAreTheProtocols(t *testing.T) {
	for code, want := range map[codes.Code]string{
		codes.OK:                 "OK",
		codes.Canceled:           "CANCELLED",
		codes.InvalidArgument:    "INVALID_ARGUMENT",
		codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
		codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION",
		codes.Unauthenticated:    "UNAUTHENTICATED",
	} {
		if got := codeName(code); got != want {
			t.Errorf("codeName(%v) = %s, want %s", code, got, want)
		}
	}
}

func TestAStatusWithDetailsBecomesAnError(t *testing.T) {
	st, err := status.New(codes.Unavailable, "standby").WithDetails(
		&errdetails.ErrorInfo{Reason: "NOT_READY", Domain: Domain, Metadata: map[string]string{"leader": "http://b:1"}},
		&errdetails.ErrorInfo{Reason: "OTHER", Domain: "elsewhere"},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "x", Description: "bad"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	var got *Error
	if !errors.As(asError(st.Err()), &got) {
		t.Fatalf("asError gave %T", asError(st.Err()))
	}
	if got.Reason != "NOT_READY" || got.Leader() != "http://b:1" || !got.Unavailable() ||
		got.Field() != "x" || got.Error() != "UNAVAILABLE (NOT_READY): standby" {
		t.Fatalf("%#v", got)
	}
	if status.Code(got) != codes.Unavailable {
		t.Fatalf("status.Code = %v", status.Code(got))
	}
}

func TestTheCallersContextEndingUnwrapsToItsError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := asError(ctx.Err())
	if !errors.Is(err, context.Canceled) || status.Code(err) != codes.Canceled {
		t.Fatalf("%v", err)
	}
	if asError(nil) != nil {
		t.Fatal("asError(nil) is not nil")
	}
}
