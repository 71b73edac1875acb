package agora_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-broker/agora/clients/go/internal/agoradev"
)

// address is the running `agora dev`'s, such as http://127.0.0.1:41234.
var address string

func TestMain(m *testing.M) { agoradev.Run(m, &address) }

var names atomic.Int64

// unique is a frontend name no other test uses (the broker outlives each
// test).
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixMilli()%100000000, names.Add(1))
}
