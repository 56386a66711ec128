package schedule_test

import (
	"fmt"
	"time"

	"github.com/certferry/certferry/internal/schedule"
)

// What a step's schedule is called, when it is set for, and what it
// delivers to the renewal function.
func ExampleRender() {
	st := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindPause, At: time.Date(2027, 3, 6, 2, 10, 0, 0, time.UTC)}
	raw, err := schedule.Render(st)
	if err != nil {
		panic(err)
	}
	fmt.Println(st.ScheduleName())
	fmt.Println(schedule.Expression(st.At))
	fmt.Println(string(raw))
	// Output:
	// cf-pause-shop-web-e51286f1a44af68e
	// at(2027-03-06T02:10:00)
	// {"version":"0","id":"cf-pause-shop-web-e51286f1a44af68e","source":"certferry","detail-type":"certferry Rollout Step","time":"2027-03-06T02:10:00Z","resources":[],"detail":{"name":"shop-web","rolloutId":"r-1","step":"pause","at":"2027-03-06T02:10:00Z"}}
}
