// pgjdbc driving fakepm's control API: add a rule and a fault over HTTP, run JDBC, verify.
//   java -cp .:postgresql.jar FakepmAdmin JDBC_URL ADMIN_URL
// One line per observation (tests/admin/test_languages.py compares them). No JSON library:
// requests are written by hand and answers searched for the fields the test needs.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

public class FakepmAdmin {
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static String admin;

    static HttpResponse<String> call(String method, String path, String json) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(admin + path)).header("Content-Type", "application/json");
        b.method(method, json == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(json));
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        admin = args[1];
        call("POST", "/reset", "{}");
        System.out.println("rule " + call("POST", "/rules",
            "{\"query\": \"SELECT name FROM users WHERE id = $1\", \"params\": [7], \"param_types\": [\"int4\"], "
            + "\"columns\": {\"name\": \"text\"}, \"rows\": [[\"ada\"]], \"expect\": 1, \"name\": \"java user\"}").statusCode());
        System.out.println("fault " + call("POST", "/faults", "{\"error\": \"40001\", \"query\": \"COMMIT\", \"first\": 1}").statusCode());
        try (Connection conn = DriverManager.getConnection(url)) {
            try (PreparedStatement ps = conn.prepareStatement("SELECT name FROM users WHERE id = ?")) {
                ps.setInt(1, 7);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    System.out.println("row " + rs.getString(1));
                }
            }
            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement("SELECT 1")) {
                ps.executeQuery().close();
            }
            try {
                conn.commit();
                System.out.println("commit ok");
            } catch (SQLException e) {
                System.out.println("commit " + e.getSQLState());
            }
        }
        HttpResponse<String> v = call("POST", "/verify", null);
        System.out.println("verify " + v.statusCode() + " " + v.body().contains("\"ok\": true"));
        String journal = call("GET", "/queries", null).body();
        int at = journal.indexOf("\"sql\": \"SELECT name FROM users WHERE id = $1\"");
        String entry = journal.substring(at, journal.indexOf("}", at));
        System.out.println("journal " + entry.contains("\"params\": [7]") + " " + entry.contains("\"answered_by\": \"rule\""));
    }
}
