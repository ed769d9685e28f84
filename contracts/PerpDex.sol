// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IERC20Collateral {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @notice Stand-in for an external perp venue with an LP token (ALP) behind a withdrawal cooldown.
/// Trades carry no PnL: what matters to the vault is custody, closing and the cooldown.
contract PerpDex {
    struct Trade {
        address owner;
        uint256 collateral;
    }

    IERC20Collateral public immutable asset;
    uint256 public immutable cooldown;

    uint256 public nextTradeId = 1; // 0 is never used, so callers can treat it as "no trade"
    mapping(uint256 => Trade) internal trades;
    mapping(address => uint256) public alpBalanceOf;
    mapping(address => uint256) public cooldownEnd;
    uint256 public alpTotalSupply;

    event TradeOpened(uint256 indexed tradeId, address indexed owner, uint256 collateral);
    event TradeClosed(uint256 indexed tradeId, address indexed owner, uint256 collateral);
    event AlpMinted(address indexed account, uint256 assets, uint256 shares, uint256 cooldownEnd);
    event AlpBurned(address indexed account, uint256 shares, uint256 assets);

    constructor(address asset_, uint256 cooldown_) {
        asset = IERC20Collateral(asset_);
        cooldown = cooldown_;
    }

    function openTrade(uint256 collateral) external returns (uint256 tradeId) {
        require(collateral > 0, "PerpDex: zero collateral");
        require(asset.transferFrom(msg.sender, address(this), collateral), "PerpDex: transfer failed");
        tradeId = nextTradeId++;
        trades[tradeId] = Trade(msg.sender, collateral);
        emit TradeOpened(tradeId, msg.sender, collateral);
    }

    function closeTrade(uint256 tradeId) external {
        Trade memory trade = trades[tradeId];
        require(trade.owner != address(0), "PerpDex: no trade");
        require(trade.owner == msg.sender, "PerpDex: not owner");
        delete trades[tradeId];
        require(asset.transfer(msg.sender, trade.collateral), "PerpDex: transfer failed");
        emit TradeClosed(tradeId, msg.sender, trade.collateral);
    }

    function tradeCollateral(uint256 tradeId) external view returns (uint256) {
        return trades[tradeId].collateral;
    }

    /// @notice Deposits into the LP 1:1; every mint restarts the caller's withdrawal cooldown.
    function mintAlp(uint256 assets) external returns (uint256 shares) {
        require(assets > 0, "PerpDex: zero assets");
        require(asset.transferFrom(msg.sender, address(this), assets), "PerpDex: transfer failed");
        shares = assets;
        alpBalanceOf[msg.sender] += shares;
        alpTotalSupply += shares;
        cooldownEnd[msg.sender] = block.timestamp + cooldown;
        emit AlpMinted(msg.sender, assets, shares, block.timestamp + cooldown);
    }

    function burnAlp(uint256 shares) external returns (uint256 assets) {
        require(block.timestamp >= cooldownEnd[msg.sender], "PerpDex: cooldown");
        require(alpBalanceOf[msg.sender] >= shares, "PerpDex: insufficient shares");
        alpBalanceOf[msg.sender] -= shares;
        alpTotalSupply -= shares;
        assets = shares;
        require(asset.transfer(msg.sender, assets), "PerpDex: transfer failed");
        emit AlpBurned(msg.sender, shares, assets);
    }

    function alpValue(address account) external view returns (uint256) {
        return alpBalanceOf[account];
    }
}
