// A Debezium-style pgjdbc logical replication consumer: create a pgoutput slot, stream, confirm, close.
// Usage: java -cp <classes>:postgresql.jar CdcConsumer <jdbc-url> <messages-to-read>
// Prints "slot <name> <consistent point>" then "msg <type> <last receive LSN>" per message, then "closed".
import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.postgresql.PGConnection;
import org.postgresql.PGProperty;
import org.postgresql.replication.LogSequenceNumber;
import org.postgresql.replication.PGReplicationStream;
import org.postgresql.replication.ReplicationSlotInfo;

public class CdcConsumer {
    public static void main(String[] args) throws Exception {
        String url = args[0];
        int wanted = Integer.parseInt(args[1]);
        Properties props = new Properties();
        PGProperty.USER.set(props, "postgres");
        PGProperty.ASSUME_MIN_SERVER_VERSION.set(props, "10");
        PGProperty.REPLICATION.set(props, "database");
        PGProperty.PREFER_QUERY_MODE.set(props, "simple");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            PGConnection pg = conn.unwrap(PGConnection.class);
            ReplicationSlotInfo info = pg.getReplicationAPI().createReplicationSlot().logical()
                    .withSlotName("jdbc_slot").withOutputPlugin("pgoutput").make();
            System.out.println("slot " + info.getSlotName() + " " + info.getConsistentPoint().asString());
            System.out.flush();
            PGReplicationStream stream = pg.getReplicationAPI().replicationStream().logical()
                    .withSlotName("jdbc_slot").withSlotOption("proto_version", 1)
                    .withSlotOption("publication_names", "pub").withStatusInterval(1, TimeUnit.SECONDS).start();
            long deadline = System.currentTimeMillis() + 20000;
            int got = 0;
            while (got < wanted && System.currentTimeMillis() < deadline) {
                ByteBuffer msg = stream.readPending();
                if (msg == null) {
                    Thread.sleep(5);
                    continue;
                }
                char kind = (char) msg.get(msg.position());
                LogSequenceNumber lsn = stream.getLastReceiveLSN();
                System.out.println("msg " + kind + " " + lsn.asString());
                System.out.flush();
                stream.setFlushedLSN(lsn);
                stream.setAppliedLSN(lsn);
                got++;
            }
            stream.forceUpdateStatus();
            stream.close();
            System.out.println("closed");
        }
    }
}
