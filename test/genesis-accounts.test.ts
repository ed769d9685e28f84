import { pbkdf2Sync } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { HDKey, privateKeyToAddress } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { packageRoot } from '../src/contracts.js'
import { devAccounts, readDevnetGenesis, writeAnvilGenesis } from '../src/el/genesis.js'
import { bytesToHex } from 'viem'

/**
 * devnet/genesis-accounts.json holds genesis.json's prefunded addresses, derived once, so a devnet
 * boot need not derive 200 of them. Derived again here (the BIP-39 seed, then viem's HDKey),
 * they must be exactly the shipped ones.
 */
/** BIP-39: PBKDF2-HMAC-SHA512 of the NFKD mnemonic, salt "mnemonic", 2048 rounds. */
const mnemonicToSeedSync = (m: string) => pbkdf2Sync(m.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512')

describe('the shipped genesis accounts', () => {
  const g = readDevnetGenesis()
  const shipped = JSON.parse(fs.readFileSync(path.join(packageRoot, 'devnet', 'genesis-accounts.json'), 'utf8')) as { mnemonic: string; addresses: string[] }

  it('are genesis.json\'s mnemonic\'s first `accounts` addresses, m/44\'/60\'/0\'/0/i', () => {
    expect(shipped.mnemonic).toBe(g.mnemonic)
    expect(shipped.addresses).toHaveLength(g.accounts)
    const parent = HDKey.fromMasterSeed(mnemonicToSeedSync(g.mnemonic)).derive("m/44'/60'/0'/0")
    const derived = shipped.addresses.map((_, i) => privateKeyToAddress(bytesToHex(parent.deriveChild(i).privateKey as Uint8Array)).toLowerCase())
    expect(derived).toEqual(shipped.addresses)
    // Anvil's first default account, as every Anvil user knows it.
    expect(shipped.addresses[0]).toBe('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266')
    expect(devAccounts(g.mnemonic, g.accounts)).toEqual(shipped.addresses)
  })

  it("devnet/keys.json: each validator's address is its key's (a devnet takes them from the file)", () => {
    const keys = JSON.parse(fs.readFileSync(path.join(packageRoot, 'devnet', 'keys.json'), 'utf8')) as { validators: { id: number; privateKey: `0x${string}`; address: string }[] }
    expect(keys.validators.map((v) => v.id)).toEqual([0, 1, 2, 3])
    for (const v of keys.validators) expect(v.address, `validator ${v.id}`).toBe(privateKeyToAddress(v.privateKey))
  })

  it('another mnemonic is derived, not read from the file', () => {
    const other = 'legal winner thank year wave sausage worth useful legal winner thank yellow'
    const parent = HDKey.fromMasterSeed(mnemonicToSeedSync(other)).derive("m/44'/60'/0'/0")
    expect(devAccounts(other, 2)).toEqual([0, 1].map((i) => privateKeyToAddress(bytesToHex(parent.deriveChild(i).privateKey as Uint8Array)).toLowerCase()))
  })

  it("the Anvil --init genesis funds every one of them with genesis.json's balance", () => {
    const dir = fs.mkdtempSync(path.join(packageRoot, '.tmp-genesis-'))
    try {
      const file = writeAnvilGenesis(dir, g, 1_800_000_000)
      const written = JSON.parse(fs.readFileSync(file, 'utf8')) as { config: { chainId: number }; timestamp: string; gasLimit: string; alloc: Record<string, { balance: string }> }
      expect(written.config.chainId).toBe(g.chainId)
      expect(Number(written.timestamp)).toBe(1_800_000_000)
      expect(Number(written.gasLimit)).toBe(g.gasLimit)
      expect(Object.keys(written.alloc)).toEqual(shipped.addresses)
      expect(new Set(Object.values(written.alloc).map((a) => BigInt(a.balance)))).toEqual(new Set([BigInt(g.balanceEth) * 10n ** 18n]))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
