package fingerprint_test

import (
	"fmt"
	"strings"

	"github.com/streamgate/streamgate/fingerprint"
)

func ExampleOf() {
	key := "sk-ant-api03-example"
	fp := fingerprint.Of(key)
	fmt.Println(strings.HasPrefix(fp, "fp_"), len(fp), strings.Contains(fp, "sk-ant"))
	// Output: true 15 false
}
