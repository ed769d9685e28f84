import { pbkdf2Sync, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { toHex } from '../util/evm.js'
import { HDKey, privateKeyToAddress } from 'viem/accounts'
import { packageRoot } from '../contracts.js'
import { InputError } from '../errors.js'
import { systemContracts } from './system-contracts.js'

/** BIP-39: the seed is PBKDF2-HMAC-SHA512 over the NFKD mnemonic, salt "mnemonic", 2048 rounds, 64 bytes. */
function mnemonicToSeed(mnemonic: string): Uint8Array {
  return pbkdf2Sync(mnemonic.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512')
}

/** The embedded devnet's chain: `devnet/genesis.json` (what every validator's Anvil starts from). */
export type DevnetGenesis = { chainId: number; mnemonic: string; accounts: number; balanceEth: number; gasLimit: number }

/** Reads `devnet/genesis.json`. */
export function readDevnetGenesis(file = path.join(packageRoot, 'devnet', 'genesis.json')): DevnetGenesis {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as DevnetGenesis
}

/** Prefunded accounts of a devnet genesis: at most this many. */
export const GENESIS_ACCOUNTS_MAX = 10_000

const accountCache = new Map<string, `0x${string}`[]>()

/** The first `count` addresses of `mnemonic` (m/44'/60'/0'/0/i, as Anvil derives them). */
export function devAccounts(mnemonic: string, count: number): `0x${string}`[] {
  if (!Number.isInteger(count) || count < 0 || count > GENESIS_ACCOUNTS_MAX)
    throw new InputError(`\`accounts\` must be an integer between 0 and ${GENESIS_ACCOUNTS_MAX}. Got \`${count}\`.`)
  const key = `${count}:${mnemonic}`
  let got = accountCache.get(key) ?? shippedAccounts(mnemonic, count)
  if (!got) {
    // The seed and the account path's parent once, then one child per account.
    const parent = HDKey.fromMasterSeed(mnemonicToSeed(mnemonic)).derive("m/44'/60'/0'/0")
    got = Array.from({ length: count }, (_, i) => {
      const key = parent.deriveChild(i).privateKey
      if (!key) throw new InputError(`The mnemonic gave no private key for account ${i}.`)
      return privateKeyToAddress(toHex(key)).toLowerCase() as `0x${string}`
    })
  }
  accountCache.set(key, got)
  return got
}

/**
 * devnet/genesis-accounts.json: genesis.json's first addresses, derived once and shipped, since
 * deriving 200 (PBKDF2, then a BIP-32 child and a public key each) took 1.9 s of a devnet boot at
 * load 8. Used only when its mnemonic is the one asked for and it holds enough addresses
 * (test/genesis-accounts.test.ts derives them again and compares); otherwise they are derived.
 */
function shippedAccounts(mnemonic: string, count: number): `0x${string}`[] | undefined {
  const file = path.join(packageRoot, 'devnet', 'genesis-accounts.json')
  if (!fs.existsSync(file)) return undefined
  const shipped = JSON.parse(fs.readFileSync(file, 'utf8')) as { mnemonic?: unknown; addresses?: unknown }
  if (shipped.mnemonic !== mnemonic || !Array.isArray(shipped.addresses) || shipped.addresses.length < count) return undefined
  return (shipped.addresses as `0x${string}`[]).slice(0, count)
}

/**
 * An Anvil `--init` genesis with the devnet's prefunded accounts in its alloc: Anvil then derives
 * only its own `--accounts` (10 in the embedded topology) instead of all 200, which took ~2 s per
 * Anvil at load 8 (four start at once on 2 cores) against 0.25–0.4 s with the alloc. Same block
 * 0 and block 1 as `--accounts 200` (hash and state root compared on Anvil 1.7.1).
 */
export function writeAnvilGenesis(dir: string, g: DevnetGenesis, timestampS: number): string {
  const balance = `0x${(BigInt(g.balanceEth) * 10n ** 18n).toString(16)}`
  const alloc: Record<string, { balance: string }> = {}
  for (const address of devAccounts(g.mnemonic, g.accounts)) alloc[address] = { balance }
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, 'anvil-genesis.json')
  fs.writeFileSync(file, JSON.stringify({ config: { chainId: g.chainId }, timestamp: `0x${timestampS.toString(16)}`, gasLimit: `0x${g.gasLimit.toString(16)}`, difficulty: '0x0', alloc }))
  return file
}

/** The blob schedule from EIP-7691 (Cancun's target 3 / max 6, Prague's 6 / 9). */
const blobSchedule = {
  cancun: { target: 3, max: 6, baseFeeUpdateFraction: 3_338_477 },
  prague: { target: 6, max: 9, baseFeeUpdateFraction: 5_007_716 },
}

/**
 * A post-merge genesis in geth's JSON format (`--gethGenesis` for ethereumjs, `geth init`,
 * `reth --chain`): every fork up to Prague active at block 0 / time 0 (TTD 0, already
 * passed), the EIP-7691 blob schedule, the four system contracts Cancun and Prague call
 * (EIPs 4788, 2935, 7002, 7251), and the devnet's prefunded accounts with its chain id and gas
 * limit. `timestampS` is the devnet's genesis time, so block 1 follows it.
 */
export function postMergeGenesis(g: DevnetGenesis, timestampS: number): Record<string, unknown> {
  const balance = `0x${(BigInt(g.balanceEth) * 10n ** 18n).toString(16)}`
  const alloc: Record<string, unknown> = {}
  for (const address of devAccounts(g.mnemonic, g.accounts)) alloc[address] = { balance }
  for (const c of systemContracts) alloc[c.address] = { balance: '0x0', nonce: '0x1', code: c.code }
  return {
    config: {
      chainId: g.chainId,
      homesteadBlock: 0,
      eip150Block: 0,
      eip155Block: 0,
      eip158Block: 0,
      byzantiumBlock: 0,
      constantinopleBlock: 0,
      petersburgBlock: 0,
      istanbulBlock: 0,
      muirGlacierBlock: 0,
      berlinBlock: 0,
      londonBlock: 0,
      arrowGlacierBlock: 0,
      grayGlacierBlock: 0,
      mergeNetsplitBlock: 0,
      terminalTotalDifficulty: 0,
      terminalTotalDifficultyPassed: true,
      shanghaiTime: 0,
      cancunTime: 0,
      pragueTime: 0,
      blobSchedule,
      // Prague reads deposit requests from this contract's logs; none is deployed here, so no deposits.
      depositContractAddress: '0x00000000219ab540356cbb839cbe05303d7705fa',
    },
    nonce: '0x0',
    timestamp: `0x${timestampS.toString(16)}`,
    extraData: '0x',
    gasLimit: `0x${g.gasLimit.toString(16)}`,
    difficulty: '0x0',
    mixHash: `0x${'00'.repeat(32)}`,
    coinbase: `0x${'00'.repeat(20)}`,
    baseFeePerGas: '0x3b9aca00',
    excessBlobGas: '0x0',
    blobGasUsed: '0x0',
    number: '0x0',
    gasUsed: '0x0',
    parentHash: `0x${'00'.repeat(32)}`,
    alloc,
  }
}

/** Writes `genesis.json` into `dir` and returns its path. */
export function writePostMergeGenesis(dir: string, g: DevnetGenesis, timestampS: number): string {
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, 'genesis.json')
  fs.writeFileSync(file, JSON.stringify(postMergeGenesis(g, timestampS), null, 2))
  return file
}

/**
 * A fresh Engine API JWT secret (32 random bytes as hex, no 0x: the `jwt.hex` format every
 * client reads), written to `dir/jwt.hex` with mode 0600. One per devnet: every validator's
 * consensus node and execution client share it.
 */
export function writeJwtSecret(dir: string): { file: string; secretHex: string } {
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, 'jwt.hex')
  const secretHex = randomBytes(32).toString('hex')
  fs.writeFileSync(file, secretHex, { mode: 0o600 })
  return { file, secretHex }
}
