import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

/**
 * Exercises the PostgreSQL JDBC driver with server-side prepared statements from the first use
 * (prepareThreshold=1), several threads at once, and prints what it saw. Run against Sluice and
 * straight against PostgreSQL, the output must be the same. Usage:
 *   java -cp postgresql.jar JdbcCheck.java URL USER PASSWORD
 */
public class JdbcCheck {
    static final int THREADS = 8;

    public static void main(String[] args) throws Exception {
        List<String> lines = Collections.synchronizedList(new ArrayList<>());
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < THREADS; i++) {
            final int index = i;
            Thread thread = new Thread(() -> {
                try {
                    for (String line : run(args[0], args[1], args[2], index)) {
                        lines.add("thread " + index + ": " + line);
                    }
                } catch (Throwable error) {
                    failures.add(error);
                }
            });
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
        for (Throwable failure : failures) {
            failure.printStackTrace();
        }
        List<String> sorted = new ArrayList<>(lines);
        Collections.sort(sorted);
        for (String line : sorted) {
            System.out.println(line);
        }
        System.exit(failures.isEmpty() ? 0 : 1);
    }

    static List<String> run(String url, String user, String password, int index) throws SQLException {
        List<String> seen = new ArrayList<>();
        Properties properties = new Properties();
        properties.setProperty("user", user);
        properties.setProperty("password", password);
        properties.setProperty("prepareThreshold", "1");
        try (Connection conn = DriverManager.getConnection(url, properties)) {
            long total = 0;
            try (PreparedStatement add = conn.prepareStatement("SELECT ?::int + ?::int");
                PreparedStatement length = conn.prepareStatement("SELECT length(?::text)")) {
                for (int n = 0; n < 40; n++) {
                    add.setInt(1, n);
                    add.setInt(2, index);
                    try (ResultSet rs = add.executeQuery()) {
                        rs.next();
                        total += rs.getInt(1);
                    }
                    length.setString(1, "z".repeat(n));
                    try (ResultSet rs = length.executeQuery()) {
                        rs.next();
                        total += rs.getInt(1);
                    }
                }
            }
            seen.add("sum " + total);
            conn.setAutoCommit(false);
            try (Statement statement = conn.createStatement()) {
                statement.execute("CREATE TEMP TABLE jdbc_t (id int primary key) ON COMMIT DROP");
            }
            try (PreparedStatement insert = conn.prepareStatement("INSERT INTO jdbc_t VALUES (?)")) {
                for (int k = 0; k < 20; k++) {
                    insert.setInt(1, k);
                    insert.addBatch();
                }
                seen.add("batch " + insert.executeBatch().length);
            }
            try (PreparedStatement count = conn.prepareStatement("SELECT count(*) FROM jdbc_t");
                ResultSet rs = count.executeQuery()) {
                rs.next();
                seen.add("rows " + rs.getInt(1));
            }
            try (PreparedStatement duplicate = conn.prepareStatement("INSERT INTO jdbc_t VALUES (1)")) {
                duplicate.execute();
            } catch (SQLException error) {
                seen.add("unique violation " + error.getSQLState());
            }
            conn.rollback();
            conn.setAutoCommit(true);
            try (PreparedStatement fetch = conn.prepareStatement(
                "SELECT g, g * g FROM generate_series(1, ?) g")) {
                fetch.setInt(1, 5);
                StringBuilder out = new StringBuilder("fetch");
                try (ResultSet rs = fetch.executeQuery()) {
                    while (rs.next()) {
                        out.append(' ').append(rs.getInt(1)).append(':').append(rs.getInt(2));
                    }
                }
                seen.add(out.toString());
            }
        }
        return seen;
    }
}
