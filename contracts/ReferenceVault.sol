// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IERC20V {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function approve(address spender, uint256 amount) external returns (bool);
}

interface IPairV {
    function getReserves() external view returns (uint112, uint112, uint32);
    function token0() external view returns (address);
    function token1() external view returns (address);
    function swap(uint256 amount0Out, uint256 amount1Out, address to) external;
}

interface IFeedV {
    function decimals() external view returns (uint8);
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

interface ITwapV {
    function update() external;
    function consult() external view returns (uint256);
}

interface ILenderV {
    function maxFlashLoan(address token) external view returns (uint256);
    function flashLoan(address receiver, address token, uint256 amount, bytes calldata data) external returns (bool);
}

interface IPerpV {
    function openTrade(uint256 collateral) external returns (uint256);
    function closeTrade(uint256 tradeId) external;
    function tradeCollateral(uint256 tradeId) external view returns (uint256);
    function mintAlp(uint256 assets) external returns (uint256);
    function burnAlp(uint256 shares) external returns (uint256);
    function cooldownEnd(address account) external view returns (uint256);
}

/// @notice Keeper-driven vault: holds USDX (`asset`), keeps a perp trade and an ALP position,
/// and balances idle USDX against WETH (`other`) through a pair. Embedded chaos-test target.
contract ReferenceVault {
    // Each guard blocks one failure mode; the build flips one at a time to make buggy variants.
    bool internal constant GUARD_ORACLE = true;
    bool internal constant GUARD_CLOSE = true;
    bool internal constant GUARD_COOLDOWN = true;
    bool internal constant GUARD_FLASH = true;
    bool internal constant GUARD_BOUNTY = true;

    uint8 public constant NORMAL = 0;
    uint8 public constant ONLY_UNWIND = 1;
    bytes32 internal constant FLASH_OK = keccak256("ERC3156FlashBorrower.onFlashLoan");

    IERC20V public immutable asset;
    IERC20V public immutable other;
    IPairV public immutable pair;
    IFeedV public immutable feed;
    ITwapV public immutable twap;
    ILenderV public immutable lender;
    IPerpV public immutable perp;
    address public owner;

    uint256 public maxDeviationBps = 200;
    uint256 public heartbeat = 1 days;
    uint256 public maxGasPrice = 100 gwei;
    uint256 public bountyGas = 200_000;
    uint256 public bountyShareMillionths = 2;
    uint256 public tradeBps = 3000;
    uint256 public alpBps = 1000;
    uint256 public maxImpactBps = 50;
    uint256 public rebalanceThresholdBps = 50;

    uint8 public riskMode;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    // Positions are booked internally, as many real vaults do; the guards keep the books honest.
    uint256 public tradeId;
    uint256 public tradeCollateral;
    uint256 public alpShares;

    event Deposit(address indexed owner, uint256 assets, uint256 shares);
    event Withdraw(address indexed owner, uint256 assets, uint256 shares);
    event RiskModeChanged(uint8 from, uint8 to, string why);
    event UnwindDeferred(string reason);
    event FlashRebalanced(uint256 borrowed, uint256 fee, uint256 otherOut);
    event DirectRebalanced(uint256 otherIn, uint256 assetOut);
    event BountyPaid(address indexed keeper, uint256 amount, uint256 cap);
    event Cycled(uint8 riskMode, uint256 totalAssets, uint256 sharePrice);

    constructor(address asset_, address other_, address pair_, address feed_, address twap_, address lender_, address perp_) {
        require(IPairV(pair_).token0() == other_ && IPairV(pair_).token1() == asset_, "Vault: pair tokens");
        (asset, other, pair, feed, twap) = (IERC20V(asset_), IERC20V(other_), IPairV(pair_), IFeedV(feed_), ITwapV(twap_));
        (lender, perp, owner) = (ILenderV(lender_), IPerpV(perp_), msg.sender);
    }

    function setParams(
        uint256 maxDeviationBps_,
        uint256 heartbeat_,
        uint256 maxGasPrice_,
        uint256 bountyGas_,
        uint256 bountyShareMillionths_,
        uint256 tradeBps_,
        uint256 alpBps_,
        uint256 maxImpactBps_,
        uint256 rebalanceThresholdBps_
    ) external {
        require(msg.sender == owner, "Vault: not owner");
        require(tradeBps_ + alpBps_ <= 1e4, "Vault: bad allocation");
        (maxDeviationBps, heartbeat, maxGasPrice) = (maxDeviationBps_, heartbeat_, maxGasPrice_);
        (bountyGas, bountyShareMillionths) = (bountyGas_, bountyShareMillionths_);
        (tradeBps, alpBps, maxImpactBps, rebalanceThresholdBps) = (tradeBps_, alpBps_, maxImpactBps_, rebalanceThresholdBps_);
    }

    // ---------------------------------------------------------------- shares

    function deposit(uint256 assets) external returns (uint256 shares) {
        require(riskMode == NORMAL, "Vault: deposits paused");
        shares = totalSupply == 0 ? assets : (assets * totalSupply) / totalAssets();
        require(shares > 0, "Vault: zero shares");
        require(asset.transferFrom(msg.sender, address(this), assets), "Vault: transfer failed");
        totalSupply += shares;
        balanceOf[msg.sender] += shares;
        emit Deposit(msg.sender, assets, shares);
    }

    /// @notice Always open, even in ONLY_UNWIND, but paid only from idle `asset`.
    function withdraw(uint256 shares) external returns (uint256 assets) {
        require(shares > 0 && balanceOf[msg.sender] >= shares, "Vault: insufficient shares");
        assets = (shares * totalAssets()) / totalSupply;
        require(asset.balanceOf(address(this)) >= assets, "Vault: insufficient idle");
        balanceOf[msg.sender] -= shares;
        totalSupply -= shares;
        require(asset.transfer(msg.sender, assets), "Vault: transfer failed");
        emit Withdraw(msg.sender, assets, shares);
    }

    function totalAssets() public view returns (uint256) {
        return _idle() + (other.balanceOf(address(this)) * twap.consult()) / 1e18 + tradeCollateral + alpShares;
    }

    function sharePrice() public view returns (uint256) {
        return totalSupply == 0 ? 1e18 : (totalAssets() * 1e18) / totalSupply;
    }

    /// @notice Most a keeper can earn per cycle: gas at maxGasPrice (ETH priced at the TWAP) plus a tiny share.
    function bountyCap() public view returns (uint256) {
        return (bountyGas * maxGasPrice * twap.consult()) / 1e18 + (totalAssets() * bountyShareMillionths) / 1e6;
    }

    // ---------------------------------------------------------------- keeper

    function cycle() external {
        twap.update();
        if (GUARD_ORACLE) _checkOracles();
        if (riskMode == ONLY_UNWIND) _unwind();
        else _run();
        _payBounty();
        emit Cycled(riskMode, totalAssets(), sharePrice());
    }

    function _checkOracles() internal {
        uint256 twapPrice = twap.consult();
        (, int256 answer, , uint256 updatedAt, ) = feed.latestRoundData();
        uint256 feedPrice = answer > 0 ? uint256(answer) * 10 ** (18 - feed.decimals()) : 0;
        string memory why;
        if (block.timestamp > updatedAt + heartbeat) why = "feed stale";
        else if (_deviationBps(_spot(), twapPrice) > maxDeviationBps) why = "spot deviates from twap";
        else if (_deviationBps(feedPrice, twapPrice) > maxDeviationBps) why = "feed deviates from twap";
        if (bytes(why).length != 0 && riskMode == NORMAL) _setRiskMode(ONLY_UNWIND, why);
        else if (bytes(why).length == 0 && riskMode == ONLY_UNWIND) _setRiskMode(NORMAL, "oracles healthy");
    }

    function _unwind() internal {
        if (tradeId != 0) _closeTrade();
        if (alpShares == 0) return;
        if (GUARD_COOLDOWN && perp.cooldownEnd(address(this)) > block.timestamp) {
            emit UnwindDeferred("alp cooldown active");
            return;
        }
        if (GUARD_COOLDOWN) perp.burnAlp(alpShares);
        else _tryPerp(abi.encodeCall(IPerpV.burnAlp, (alpShares))); // the bug: a failed burn is written off
        alpShares = 0;
    }

    function _run() internal {
        if (tradeId != 0) _closeTrade();
        uint256 assets = totalAssets();
        uint256 collateral = _min((assets * tradeBps) / 1e4, _idle());
        if (collateral > 0) {
            asset.approve(address(perp), collateral);
            uint256 paid = _idle();
            uint256 id = perp.openTrade(collateral);
            // Book only a trade that exists and holds what was paid for it: a bogus id answered by
            // the perp would make every later close revert, and unpaid collateral would be counted twice.
            require(id != 0 && _idle() + collateral == paid && perp.tradeCollateral(id) == collateral, "Vault: trade not opened");
            tradeId = id;
            tradeCollateral = collateral;
        }
        uint256 alpTarget = (assets * alpBps) / 1e4;
        if (alpShares < alpTarget) {
            uint256 topUp = _min(alpTarget - alpShares, _idle());
            asset.approve(address(perp), topUp);
            alpShares += perp.mintAlp(topUp); // restarts the perp's cooldown for us, on purpose
        }
        _rebalance(assets);
    }

    /// @dev Aims for idle asset == value of `other`; moves half the gap, capped under GUARD_FLASH.
    function _rebalance(uint256 assets) internal {
        uint256 price = twap.consult();
        uint256 idle = _idle();
        uint256 otherValue = (other.balanceOf(address(this)) * price) / 1e18;
        uint256 threshold = (assets * rebalanceThresholdBps) / 1e4;
        (uint112 otherReserve, uint112 assetReserve, ) = pair.getReserves();
        uint256 sizeCap = (uint256(assetReserve) * maxImpactBps) / 1e4;
        if (idle > otherValue + threshold) {
            uint256 borrow = (idle - otherValue) / 2;
            if (GUARD_FLASH) borrow = _min(borrow, _min(lender.maxFlashLoan(address(asset)), sizeCap));
            if (borrow > 0) lender.flashLoan(address(this), address(asset), borrow, "");
        } else if (otherValue > idle + threshold) {
            uint256 sellValue = (otherValue - idle) / 2;
            if (GUARD_FLASH) sellValue = _min(sellValue, sizeCap);
            uint256 otherIn = (sellValue * 1e18) / price;
            uint256 assetOut = _amountOut(otherIn, otherReserve, assetReserve);
            require(other.transfer(address(pair), otherIn), "Vault: transfer failed");
            pair.swap(0, assetOut, address(this));
            emit DirectRebalanced(otherIn, assetOut);
        }
    }

    /// @notice ERC-3156 callback: swap the borrowed asset into `other`, repay from idle asset.
    function onFlashLoan(address initiator, address token, uint256 amount, uint256 fee, bytes calldata)
        external
        returns (bytes32)
    {
        require(msg.sender == address(lender) && initiator == address(this), "Vault: bad flash loan");
        require(token == address(asset), "Vault: bad token");
        (uint112 otherReserve, uint112 assetReserve, ) = pair.getReserves();
        uint256 otherOut = _amountOut(amount, assetReserve, otherReserve);
        require(asset.transfer(address(pair), amount), "Vault: transfer failed");
        pair.swap(otherOut, 0, address(this));
        asset.approve(address(lender), amount + fee);
        emit FlashRebalanced(amount, fee, otherOut);
        return FLASH_OK;
    }

    function _closeTrade() internal {
        if (GUARD_CLOSE) {
            uint256 before = _idle();
            perp.closeTrade(tradeId);
            // A close is proven by the collateral coming back, not by the call returning: a perp that
            // answers without paying has not closed, and clearing the books then would lose the collateral.
            require(_idle() >= before + tradeCollateral, "Vault: close not paid");
        } else _tryPerp(abi.encodeCall(IPerpV.closeTrade, (tradeId))); // the bug: a failed close is written off
        tradeId = 0;
        tradeCollateral = 0;
    }

    function _payBounty() internal {
        uint256 gasPrice = GUARD_BOUNTY ? _min(tx.gasprice, maxGasPrice) : tx.gasprice;
        uint256 cap = bountyCap(); // before paying, so the cap is what the keeper was promised
        uint256 bounty = (bountyGas * gasPrice * twap.consult()) / 1e18 + (totalAssets() * bountyShareMillionths) / 1e6;
        require(asset.transfer(msg.sender, bounty), "Vault: transfer failed");
        emit BountyPaid(msg.sender, bounty, cap);
    }

    function _setRiskMode(uint8 to, string memory why) internal {
        emit RiskModeChanged(riskMode, to, why);
        riskMode = to;
    }

    /// @dev Low-level call whose result the unguarded variants deliberately ignore.
    function _tryPerp(bytes memory data) internal returns (bool ok) {
        (ok, ) = address(perp).call(data);
    }

    function _spot() internal view returns (uint256) {
        (uint112 otherReserve, uint112 assetReserve, ) = pair.getReserves();
        return otherReserve == 0 ? 0 : (uint256(assetReserve) * 1e18) / otherReserve;
    }

    function _idle() internal view returns (uint256) {
        return asset.balanceOf(address(this));
    }

    function _deviationBps(uint256 value, uint256 ref) internal pure returns (uint256) {
        if (ref == 0) return type(uint256).max;
        return ((value > ref ? value - ref : ref - value) * 1e4) / ref;
    }

    function _amountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut) internal pure returns (uint256) {
        uint256 inWithFee = amountIn * 997;
        return (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}
