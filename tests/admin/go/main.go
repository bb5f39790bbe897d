// A Go test program driving fakepm's control API with pgx (Debian's golang-github-jackc-pgx-v4-dev).
//
//	go run main.go DSN ADMIN_URL
//
// It adds a rule and a fault over HTTP, runs pgx against the DSN, verifies, reads the journal,
// and prints one line per observation (tests/admin/test_languages.py compares them).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
)

var admin string

func call(method, path string, body interface{}) (int, map[string]interface{}) {
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, admin+path, reader)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	out := map[string]interface{}{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func main() {
	dsn := os.Args[1]
	admin = os.Args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	call("POST", "/reset", map[string]interface{}{})
	status, _ := call("POST", "/rules", map[string]interface{}{
		"query": "SELECT name FROM users WHERE id = $1", "params": []int{7}, "param_types": []string{"int4"},
		"columns": map[string]string{"name": "text"}, "rows": [][]string{{"ada"}}, "expect": 1, "name": "go user",
	})
	fmt.Println("rule", status)
	status, _ = call("POST", "/faults", map[string]interface{}{"error": "40001", "query": "COMMIT", "first": 1})
	fmt.Println("fault", status)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		panic(err)
	}
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", 7).Scan(&name); err != nil {
		panic(err)
	}
	fmt.Println("row", name)
	tx, err := conn.Begin(ctx)
	if err != nil {
		panic(err)
	}
	err = tx.Commit(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		fmt.Println("commit", pgErr.Code)
	} else {
		fmt.Println("commit", err)
	}
	conn.Close(ctx)

	status, body := call("POST", "/verify", nil)
	fmt.Println("verify", status, body["ok"])
	_, journal := call("GET", "/queries", nil)
	for _, q := range journal["queries"].([]interface{}) {
		entry := q.(map[string]interface{})
		if entry["sql"] == "SELECT name FROM users WHERE id = $1" {
			fmt.Println("journal", entry["params"], entry["answered_by"], entry["rule_source"])
		}
	}
}
