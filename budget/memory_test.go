package budget_test

import (
	"testing"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/budget/budgettest"
)

func TestMemoryConformance(t *testing.T) {
	budgettest.Run(t, func(*testing.T) budget.Store { return budget.NewMemory() })
}
