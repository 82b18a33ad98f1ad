/**
 * @peculiar/x509, ready to use: its dependency injection (tsyringe) needs the Reflect metadata
 * polyfill loaded first, and it signs through the runtime's WebCrypto. Import x509 from here.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto);

export { x509 };
