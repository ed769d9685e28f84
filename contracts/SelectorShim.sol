// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SelectorShim
/// @notice forkchaos' generic fault shim. The toolkit copies a target's runtime code to IMPL, puts
/// this runtime code at the target address (anvil_setCode) and writes the configuration into the
/// TARGET's storage (anvil_setStorageAt). So there is no constructor state and no immutable: every
/// setting is read from namespaced slots, far away from the target's own layout.
///
///   IMPL_SLOT     = uint256(keccak256("forkchaos.shim.impl")) - 1            -> address, low 20 bytes
///   rule(sel)     = uint256(keccak256(abi.encode(bytes4 sel, "forkchaos.shim.rule")))
///                   (abi.encode of (bytes4, string): 128 bytes = sel left-aligned | 0x40 | 19 | text)
///     bits  0..7    mode: 0 pass through, 1 revert, 2 return garbage, 3 burn gas then pass through,
///                   4 call the original, then rewrite one word of what it returned
///     bits  8..71   gas to burn before delegating (uint64, mode 3)
///     bits 72..79   garbage length in 32-byte words (mode 2; 0 returns empty data)
///     bits 80..87   mode 4: index of the returned word to rewrite
///     bits 88..95   mode 4: 0 replace it with rule+3, 1 scale it as a uint by rule+3 / 10000,
///                   2 scale it as an int256 by rule+3 / 10000
///   rule(sel) + 1   revert reason, left-aligned bytes32 text, trailing zero bytes trimmed (mode 1);
///                   reverts with Error(string), or with empty data when the word is zero
///   rule(sel) + 2   garbage word, returned `length` times (mode 2)
///   rule(sel) + 3   mode 4: the replacement word, or the scale in basis points
///
/// Never writes storage, so view functions keep working under STATICCALL.
contract SelectorShim {
    bytes32 internal constant IMPL_SLOT = bytes32(uint256(keccak256("forkchaos.shim.impl")) - 1);

    fallback() external payable {
        uint256 slot = uint256(keccak256(abi.encode(msg.sig, "forkchaos.shim.rule")));
        uint256 rule = _load(slot);
        uint256 mode = rule & 0xff;
        if (mode == 1) _revertWith(bytes32(_load(slot + 1)));
        if (mode == 2) _returnGarbage(_load(slot + 2), (rule >> 72) & 0xff);
        if (mode == 3) _burn(uint64(rule >> 8));
        if (mode == 4) _rewrite((rule >> 80) & 0xff, (rule >> 88) & 0xff, _load(slot + 3));
        _delegate();
    }

    /// @dev Plain ether transfers carry no selector: always pass them through.
    receive() external payable {
        _delegate();
    }

    function _delegate() private {
        address impl = address(uint160(_load(uint256(IMPL_SLOT))));
        require(impl != address(0), "SelectorShim: no impl");
        assembly {
            // Scratch use of memory from 0 is fine: this frame never returns to Solidity code.
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    /// @dev Calls the original code, then rewrites word `index` of its return data (a return too
    /// short to hold it passes unchanged; a revert is passed on as it is).
    function _rewrite(uint256 index, uint256 op, uint256 value) private {
        address impl = address(uint160(_load(uint256(IMPL_SLOT))));
        require(impl != address(0), "SelectorShim: no impl");
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            let size := returndatasize()
            returndatacopy(0, 0, size)
            if iszero(ok) { revert(0, size) }
            let at := mul(index, 32)
            if iszero(lt(size, add(at, 32))) {
                let word := mload(at)
                switch op
                case 0 { word := value }
                case 1 { word := div(mul(word, value), 10000) }
                default { word := sdiv(mul(word, value), 10000) }
                mstore(at, word)
            }
            return(0, size)
        }
    }

    function _revertWith(bytes32 word) private pure {
        if (word == bytes32(0)) revert();
        uint256 length = 32;
        while (word[length - 1] == 0) length--;
        bytes memory reason = new bytes(length);
        for (uint256 i = 0; i < length; i++) reason[i] = word[i];
        revert(string(reason));
    }

    function _returnGarbage(uint256 word, uint256 words) private pure {
        assembly {
            let p := mload(0x40)
            for { let i := 0 } lt(i, words) { i := add(i, 1) } { mstore(add(p, mul(i, 32)), word) }
            return(p, mul(words, 32))
        }
    }

    /// @dev Spends `amount` gas (or runs out trying), to starve whatever the caller forwarded.
    function _burn(uint256 amount) private view {
        uint256 start = gasleft();
        while (start - gasleft() < amount) {}
    }

    function _load(uint256 slot) private view returns (uint256 value) {
        assembly {
            value := sload(slot)
        }
    }
}
