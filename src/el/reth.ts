/**
 * Reth as a devnet execution client: a command template only, for users who have the binary
 * (forkchaos does not ship or download it; devnet/docker-compose.yml runs the same flags in
 * containers). Every port on 127.0.0.1, no discovery, no peers: the consensus node drives it
 * through the Engine API with the devnet's JWT, like ethereumjs.
 */
export type RethCommandParameters = {
  /** The `reth` binary. Default `reth` (on PATH). */
  binary?: string
  dataDir: string
  /** A geth-style post-merge genesis (`writePostMergeGenesis`); reth reads it with `--chain`. */
  genesisFile: string
  jwtFile: string
  rpcPort: number
  enginePort: number
}

/** The argv that starts one Reth for a devnet validator. */
export function rethCommand(p: RethCommandParameters): string[] {
  return [
    p.binary ?? 'reth',
    'node',
    `--chain=${p.genesisFile}`,
    `--datadir=${p.dataDir}`,
    '--http',
    '--http.addr=127.0.0.1',
    `--http.port=${p.rpcPort}`,
    '--http.api=eth,net,web3',
    '--authrpc.addr=127.0.0.1',
    `--authrpc.port=${p.enginePort}`,
    `--authrpc.jwtsecret=${p.jwtFile}`,
    '--disable-discovery',
    '--max-outbound-peers=0',
    '--max-inbound-peers=0',
    '--port=0',
  ]
}
