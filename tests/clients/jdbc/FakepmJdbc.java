// pgjdbc scenarios driven by tests/clients/test_jdbc.py: `java FakepmJdbc <scenario> <jdbc-url> [user] [password]`.
// Prints one line per observation; a SQLException prints "SQLSTATE <code> <message>".
import java.sql.*;
import java.util.Properties;

public class FakepmJdbc {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args.length > 2 ? args[2] : "postgres");
        if (args.length > 3) props.setProperty("password", args[3]);
        props.setProperty("connectTimeout", "5");
        props.setProperty("socketTimeout", "20");
        try (Connection c = DriverManager.getConnection(args[1], props)) {
            switch (args[0]) {
                case "connect": connect(c); break;
                case "prepared": prepared(c); break;
                case "transactions": transactions(c); break;
                case "fetchsize": fetchSize(c); break;
                case "error": error(c); break;
                case "batch": batch(c); break;
                case "types": types(c); break;
                case "notify": notifyScenario(c, args[1], props); break;
                case "cancel": cancel(c); break;
                default: throw new IllegalArgumentException("unknown scenario " + args[0]);
            }
        } catch (SQLException e) {
            System.out.println("SQLSTATE " + e.getSQLState() + " " + e.getMessage());
        }
    }

    static void connect(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
            System.out.println("select1 " + rs.getInt(1));
        }
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SHOW application_name")) {
            rs.next();
            System.out.println("application_name " + rs.getString(1));
        }
        System.out.println("version " + c.getMetaData().getDatabaseProductVersion());
    }

    static void prepared(Connection c) throws SQLException {
        // > prepareThreshold (5) executions: pgjdbc switches to the named statement S_1 and binary int4 results
        try (PreparedStatement ps = c.prepareStatement("SELECT id, name FROM users WHERE id = ? AND name = ?")) {
            for (int i = 0; i < 8; i++) {
                ps.setInt(1, 7);
                ps.setString(2, "ada");
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) System.out.println("row " + i + " " + rs.getInt("id") + " " + rs.getString("name"));
                }
            }
        }
    }

    static void transactions(Connection c) throws SQLException {
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (id, item) VALUES (?, ?)")) {
            ps.setInt(1, 1);
            ps.setString(2, "kept");
            System.out.println("insert " + ps.executeUpdate());
            c.commit();
            System.out.println("committed");
            ps.setInt(1, 2);
            ps.setString(2, "dropped");
            System.out.println("insert " + ps.executeUpdate());
            c.rollback();
            System.out.println("rolled back");
        }
    }

    static void fetchSize(Connection c) throws SQLException {
        c.setAutoCommit(false);  // pgjdbc uses a portal with Execute max_rows only inside a transaction
        try (Statement s = c.createStatement()) {
            s.setFetchSize(2);
            try (ResultSet rs = s.executeQuery("SELECT g FROM series")) {
                StringBuilder sb = new StringBuilder("rows");
                while (rs.next()) sb.append(' ').append(rs.getInt(1));
                System.out.println(sb);
            }
        }
        c.commit();
        System.out.println("committed");
    }

    static void error(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.executeQuery("SELECT 1/0");
            System.out.println("no error?");
        } catch (SQLException e) {
            System.out.println("error " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
        }
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            s.executeQuery("SELECT 1/0");
        } catch (SQLException e) {
            System.out.println("error in tx " + e.getSQLState());
        }
        try (Statement s = c.createStatement()) {
            s.executeQuery("SELECT 1");
        } catch (SQLException e) {
            System.out.println("aborted " + e.getSQLState());
        }
        c.rollback();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
            System.out.println("recovered " + rs.getInt(1));
        }
    }

    // The SQL comes from the environment (FAKEPM_SQL) so the Python test holds the one copy of it.
    // Run 1 reads text results (unnamed statement); run 7 comes after prepareThreshold, when pgjdbc
    // asks for binary results for the types it can decode in binary.
    static void types(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(System.getenv("FAKEPM_SQL"))) {
            for (int run = 1; run <= 7; run++) {
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    while (rs.next()) {
                        if (run != 1 && run != 7) continue;
                        for (int i = 1; i <= md.getColumnCount(); i++) {
                            Object o = rs.getObject(i);
                            System.out.println("run" + run + " " + md.getColumnName(i) + " " + md.getColumnTypeName(i)
                                + " string=" + rs.getString(i)
                                + " object=" + (o == null ? "null" : o.getClass().getSimpleName() + ":" + o));
                        }
                    }
                }
            }
        }
    }

    static void notifyScenario(Connection listener, String url, Properties props) throws Exception {
        try (Statement s = listener.createStatement()) {
            s.execute("LISTEN chan1");
        }
        try (Connection other = DriverManager.getConnection(url, props); Statement s = other.createStatement()) {
            s.execute("NOTIFY chan1, 'hello'");
        }
        org.postgresql.PGConnection pgc = listener.unwrap(org.postgresql.PGConnection.class);
        org.postgresql.PGNotification[] got = pgc.getNotifications(10000);
        if (got == null) got = new org.postgresql.PGNotification[0];
        for (org.postgresql.PGNotification n : got) System.out.println("notification " + n.getName() + " " + n.getParameter());
    }

    static void cancel(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.setQueryTimeout(1);  // pgjdbc sends a CancelRequest on a new connection when it expires
            s.executeQuery("SELECT slow()");
            System.out.println("no cancel?");
        } catch (SQLException e) {
            System.out.println("cancel " + e.getSQLState() + " " + e.getMessage());
        }
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
            rs.next();
            System.out.println("after " + rs.getInt(1));
        }
    }

    static void batch(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (id, item) VALUES (?, ?)")) {
            for (int i = 1; i <= 3; i++) {
                ps.setInt(1, i);
                ps.setString(2, "item" + i);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            StringBuilder sb = new StringBuilder("batch");
            for (int n : counts) sb.append(' ').append(n);
            System.out.println(sb);
        }
    }
}
