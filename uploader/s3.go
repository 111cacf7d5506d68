package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/kunobi-ninja/kache/config"
)

// defaultRegion is used when neither [s3] region, KACHE_S3_REGION nor the
// AWS chain (AWS_REGION, ~/.aws/config) names one: S3-compatible servers
// accept any region, and AWS needs one to sign.
const defaultRegion = "us-east-1"

// S3Remote stores objects in an S3 bucket (AWS or an S3-compatible server
// such as versitygw, MinIO or R2) under a key prefix.
//
// Retries: the SDK's own retryer is disabled (aws.NopRetryer), so every call
// is one HTTP attempt. The worker pool retries with its own exponential
// backoff and circuit breaker; stacking the SDK's retries under it would
// multiply attempts against a dead server and hide failures from the breaker.
type S3Remote struct {
	// client is built in the background by NewS3 (loading the AWS
	// configuration parses the CA bundle and shared files: several ms that
	// would otherwise delay the daemon's readiness); calls wait for it.
	client   func() (*s3.Client, error)
	bucket   string
	prefix   string
	endpoint string
	conns    *connTracker
}

// NewS3 builds an S3 remote from the [s3] settings. Credentials come from the
// standard AWS chain (environment, shared files, SSO, instance roles). When
// an endpoint is set, requests go there with path-style addressing, which
// S3-compatible servers need. The SDK's buildable HTTP client is kept (it is
// what honours AWS_CA_BUNDLE) and only tuned: idle connections per host
// cover the upload workers and prefetch runners so they reuse connections.
func NewS3(ctx context.Context, c config.S3) (*S3Remote, error) {
	if c.Bucket == "" {
		return nil, errors.New("s3 remote: no bucket (set [s3] bucket in config.toml or KACHE_S3_BUCKET)")
	}
	if err := checkEndpoint(c.Endpoint); err != nil {
		return nil, err
	}
	conns := &connTracker{conns: map[*trackedConn]struct{}{}}
	load := sync.OnceValues(func() (*s3.Client, error) { return newClient(ctx, c, conns) })
	go load() // ready by the time the first upload needs it
	return &S3Remote{client: load, bucket: c.Bucket, prefix: c.Prefix, endpoint: c.Endpoint, conns: conns}, nil
}

// newClient loads the AWS configuration and builds the S3 client. A
// failure is a configuration problem, so every call reports it as a paused
// remote (status shows why) rather than a verdict on an entry.
func newClient(ctx context.Context, c config.S3, conns *connTracker) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(httpClient(c.Concurrency, conns)),
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		// No CRC32 trailers (aws-chunked bodies) nor response CRC checks:
		// kache sends and checks its own SHA-256 (see PutNew), so the SDK's
		// would only cost a second pass over every body.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.WithoutCancel(ctx), opts...)
	if err != nil {
		return nil, Paused(fmt.Errorf("s3 remote: load AWS config: %w", err))
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.UsePathStyle = true
		}
	}), nil
}

// checkEndpoint rejects an endpoint the SDK would only fail on later.
func checkEndpoint(ep string) error {
	if ep == "" {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("s3 remote: endpoint %q is not a URL such as https://s3.example.com or http://127.0.0.1:7070", ep)
	}
	return nil
}

// responseHeaderTimeout bounds the wait for a response once a request has
// been sent.
var responseHeaderTimeout = 30 * time.Second // a var: tests shorten it

// httpClient tunes the SDK's buildable client for the pool's concurrency.
func httpClient(concurrency int, conns *connTracker) *awshttp.BuildableClient {
	if concurrency <= 0 {
		concurrency = config.DefaultConcurrency
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		// A server that accepts and never answers must fail the request,
		// not hold a worker: the pool retries behind its breaker.
		tr.ResponseHeaderTimeout = responseHeaderTimeout
		// Every upload worker and every prefetch runner (half as many)
		// keeps its connection between requests instead of redialling.
		idle := concurrency + max(1, concurrency/2)
		tr.MaxIdleConnsPerHost = idle
		tr.MaxIdleConns = max(tr.MaxIdleConns, idle)
		tr.DialContext = conns.wrap(tr.DialContext)
		// Bodies are copied through the transport's buffer: 4 KiB (the
		// default) costs a write syscall per 4 KiB of a 64 MiB object.
		tr.WriteBufferSize, tr.ReadBufferSize = 256<<10, 64<<10
	})
}

// String describes the remote for status.
func (s *S3Remote) String() string {
	d := "s3://" + s.bucket + "/" + s.prefix
	if s.endpoint != "" {
		d += " (" + s.endpoint + ")"
	}
	return d
}

// Close drops the remote's open connections, so a stopped daemon leaves no
// connection goroutines behind. Call it only once no request is in flight.
func (s *S3Remote) Close() error {
	s.conns.closeAll()
	return nil
}

// Head reports whether the object exists; 404 is (false, nil).
func (s *S3Remote) Head(ctx context.Context, key string) (bool, error) {
	cl, err := s.client()
	if err != nil {
		return false, err
	}
	_, err = cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, s.classify("head", key, err)
}

// Get opens the object; a missing one is ErrNotFound.
func (s *S3Remote) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	cl, err := s.client()
	if err != nil {
		return nil, err
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s: %w", s.url(key), ErrNotFound)
		}
		return nil, s.classify("get", key, err)
	}
	return out.Body, nil
}

// Put stores exactly size bytes from r with one PutObject (S3 makes it
// atomic). Over plain HTTP the SDK must hash the body before sending it, so
// it needs to seek: a reader that cannot seek (an *os.File or a
// bytes.Reader can) is first copied to a temp file.
func (s *S3Remote) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	cl, err := s.client()
	if err != nil {
		return err
	}
	body, done, err := seekable(r, size)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.url(key), err)
	}
	defer done()
	_, err = cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: aws.String(s.prefix + key), Body: body, ContentLength: aws.Int64(size),
	})
	if err != nil {
		return s.classify("put", key, err)
	}
	return nil
}

// seekable returns r itself if it can seek, else a temp-file copy of it.
func seekable(r io.Reader, size int64) (io.ReadSeeker, func(), error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		return rs, func() {}, nil
	}
	if size < 0 {
		return nil, nil, errors.New("the size of the body must be known")
	}
	f, err := os.CreateTemp("", "kache-put-*")
	if err != nil {
		return nil, nil, err
	}
	done := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("read %d bytes, expected %d", n, size)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return f, done, nil
}

// PutNew stores the object with one conditional PutObject (If-None-Match:
// *): 412 means it is already there (ErrExists). The payload hash that the
// request is signed with is sum itself, so a server that checks payloads
// (AWS, versitygw) refuses a body that does not hash to it (ErrBodyMismatch),
// and the SDK does not read the body a second time to hash it. Nor does
// kache: a source file that might change while it is sent is guarded by
// its caller (sourceGuard in entry.go), and what a server without payload
// checks stored wrong is rejected and deleted by the first download.
func (s *S3Remote) PutNew(ctx context.Context, key string, body io.Reader, size int64, sum string, meta map[string]string) error {
	cl, err := s.client()
	if err != nil {
		return err
	}
	rs, done, err := seekable(body, size)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.url(key), err)
	}
	defer done()
	_, err = cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: aws.String(s.prefix + key), Body: rs, ContentLength: aws.Int64(size),
		IfNoneMatch: aws.String("*"), Metadata: meta,
	}, withPayloadHash(sum))
	switch {
	case err == nil:
		return nil
	case isPreconditionFailed(err):
		return fmt.Errorf("put %s: %w", s.url(key), ErrExists)
	}
	return s.classify("put", key, err)
}

// withPayloadHash signs the request with a payload hash computed by the
// caller; the SDK's own hashing middleware skips a request that has one.
func withPayloadHash(sum string) func(*s3.Options) {
	set := middleware.InitializeMiddlewareFunc("kachePayloadHash", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		return next.HandleInitialize(v4.SetPayloadHash(ctx, sum), in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(set, middleware.After)
		})
	}
}

// GetMeta opens the object with its user metadata (x-amz-meta-*, keys in
// lower case); a missing one is ErrNotFound.
func (s *S3Remote) GetMeta(ctx context.Context, key string) (io.ReadCloser, map[string]string, error) {
	cl, err := s.client()
	if err != nil {
		return nil, nil, err
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		if isNotFound(err) {
			return nil, nil, fmt.Errorf("get %s: %w", s.url(key), ErrNotFound)
		}
		return nil, nil, s.classify("get", key, err)
	}
	return out.Body, out.Metadata, nil
}

// Delete removes the object; S3 answers a missing one with success.
func (s *S3Remote) Delete(ctx context.Context, key string) error {
	cl, err := s.client()
	if err != nil {
		return err
	}
	_, err = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil && !isNotFound(err) {
		return s.classify("delete", key, err)
	}
	return nil
}

// isPreconditionFailed reports the 412 of a conditional write whose object
// exists.
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusPreconditionFailed
}

func (s *S3Remote) url(key string) string { return "s3://" + s.bucket + "/" + s.prefix + key }

// pausedCodes are S3 error codes that say the remote refuses everyone until
// its configuration is fixed (credentials, clock, bucket): no retry of one
// entry can help, and no entry is at fault.
var pausedCodes = map[string]bool{
	"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"RequestTimeTooSkewed": true, "ExpiredToken": true, "InvalidToken": true,
	"NoSuchBucket": true, "InvalidBucketName": true, "AllAccessDisabled": true,
}

// mismatchCodes say the body received does not hash to the signed payload
// hash: the source changed between hashing and sending.
var mismatchCodes = map[string]bool{"XAmzContentSHA256Mismatch": true, "BadDigest": true}

// classify wraps an SDK error with context and marks it Paused when the
// remote refuses everyone (403, bad keys, skewed clock, missing bucket).
// Everything else (network errors, 5xx, throttling, missing credentials that
// a login may restore) stays transient for the pool to retry.
func (s *S3Remote) classify(op, key string, err error) error {
	err = fmt.Errorf("s3 %s %s: %w", op, s.url(key), err)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch code := apiErr.ErrorCode(); {
		case mismatchCodes[code]:
			return fmt.Errorf("%w: %w", ErrBodyMismatch, err)
		case pausedCodes[code]:
			return Paused(fmt.Errorf("%w (check the credentials, the clock and [s3] bucket, then the uploads resume by themselves)", err))
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusForbidden {
		return Paused(fmt.Errorf("%w (check the credentials and the bucket policy, then the uploads resume by themselves)", err))
	}
	return err
}

// isNotFound reports a missing object (not a missing bucket).
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotFound", "NoSuchKey":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound
}

// connTracker remembers the connections the HTTP client dialled, so Close
// can end them: the SDK's client does not expose CloseIdleConnections.
type connTracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (t *connTracker) wrap(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: t}
		t.mu.Lock()
		t.conns[tc] = struct{}{}
		t.mu.Unlock()
		return tc, nil
	}
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	all := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		all = append(all, c)
	}
	t.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// trackedConn forgets itself when closed.
type trackedConn struct {
	net.Conn
	t *connTracker
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
