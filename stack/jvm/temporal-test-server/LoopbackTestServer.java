import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.temporal.internal.testservice.GRPCServerHelper;
import io.temporal.internal.testservice.TestServicesStarter;
import java.net.InetSocketAddress;

/**
 * Same as io.temporal.testserver.TestServer (usage: <port> [--enable-time-skipping]) but binds
 * to 127.0.0.1 only (TestServer binds all interfaces). Host overridable with -Dtts.host=...
 */
public final class LoopbackTestServer {
  public static void main(String[] args) throws Exception {
    if (args.length < 1 || args.length > 2) {
      System.err.println("Usage: LoopbackTestServer <port> [--enable-time-skipping]");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    boolean enableTimeSkipping = args.length > 1 && "--enable-time-skipping".equalsIgnoreCase(args[1]);
    if (args.length > 1 && !enableTimeSkipping) {
      System.err.println("Unknown flag " + args[1]);
      System.exit(2);
    }
    String host = System.getProperty("tts.host", "127.0.0.1");
    TestServicesStarter starter = new TestServicesStarter(!enableTimeSkipping, 0);
    NettyServerBuilder builder =
        NettyServerBuilder.forAddress(new InetSocketAddress(host, port), InsecureServerCredentials.create());
    GRPCServerHelper.registerServicesAndHealthChecks(starter.getServices(), builder);
    Server server = builder.build().start();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.shutdownNow();
      starter.close();
    }));
    server.awaitTermination();
  }
}
