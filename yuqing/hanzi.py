"""Traditional Chinese characters to simplified, so that a post in either script reads alike (pure).

Posts from Hong Kong, Taiwan or overseas relatives, and some phones' input methods, write
``停電``, ``電費``, ``什麼時候來電`` where the rest of the stream writes ``停电``, ``电费``: for
comparing what posts say (their words, their places, the township ``鎮``/``鄉`` they name) the
two scripts are one. The table holds the characters common in posts about electricity, bills,
service and places (about six hundred); each traditional character maps to one simplified
character and none is itself a simplified character, so simplified text passes unchanged. A
character missing from the table stays as written (a missed match, never a wrong one).
"""

from __future__ import annotations

_TRADITIONAL = (
    "電費錶價漲來時點這個麼嗎們話廳營業線區鄉鎮組還沒搶貴帳賬單壓燈斷變燒問題說聽謠開關門頭見讓給會幾號碼後熱辦為爲邊裡裏過對應該講錢繳戶報裝網絡統務員處機視調數據實際現發髮動氣車輛場樓"
    "樹風雲陽臺檯颱灣橋塊條齊長張師謝贊讚態歡樂愛嚴險擔憂傷亂廠廣醫學園縣靜連續當節約歲買賣錯誤護維檢測驗換舊書寫讀聲響麥飯餓鍋煙閃爍兩萬億週鐘鍾陰層遠轉達遲趕緊請幫記錄紀係繫論認識談訴"
    "設計劃備標準確資訊罷聯頁顯訂閱擊傳證簽額餘儲預銀財徵稅補貼償賠損壞桿墜觸殺災難絕溫涼衝強穩廢棄紅綠藍黃無與從將隻幹產農養雞鴨豬魚糧麵葉鋪飲爺孫媽兒婦齡親鄰陳劉趙楊吳鄭馬羅韓許鄧蘇盧"
    "賈譚鄒陸顧龍湯喬賀賴眾夠歷曆雖總極樣種舉體專東間閒鬧聞陣頻順須領頓願類飛館驚鬆鳥鳴鶴麗黨壩墳嶺巖峽廟彎徑復複慶憑懷戰擁擋擾攤敗晉曬殘殼溝滅滿漁潔濕濟灑爐爭牆獨獲環畫療盡監盤礦禮禍積"
    "窮筆範築簡糾紙級納純練結經綜編緣績繩繼罰習聖職腦腳臉興藝藥蟲術製襲規覺觀託訪評詢試詳誠誰課諒謎議豐貓負貨質購賺贏趨跡躍軍軟較載輕輸進運違適選遺遊郵釋針鈴銷鋼鍵鎖鏈鐵閘闆隊階隨隱雜離"
    "霧靈項顏飽騙鬥夥兇優儀僅債傾僱內冊凍減劇勁勞勢協厲參雙嚇嘆噸圍圖團堅塵墊夢奪奮寧審寬導尋屬帶幣庫彈惡悶惱慣懶戲拋掃掛採揚搖撥擇擴擺攜暫曉構槍檔櫃權歸決況湧滾漢濃烏煩牽狀獎盜礙稱穀窩"
    "競籌細終緒緩縮織繞義膽臨艦莊華蓋蘭蠟燭衛襪覽訓診詞謊貝貪賓贈蹤軌輔輪辭醜銅鋁鏡閉頂頸飄餅驅髒鮮鹽黴於啟鈕燉蝦滷睏撐擠瞭囉噁嘸喚燙爛燜韌樁匯滙銜詐騷窯屜櫥饋鑰衆墻纜遷鋸礎濾澀滯渾溼漿"
)
_SIMPLIFIED = (
    "电费表价涨来时点这个么吗们话厅营业线区乡镇组还没抢贵账账单压灯断变烧问题说听谣开关门头见让给会几号码后热办为为边里里过对应该讲钱缴户报装网络统务员处机视调数据实际现发发动气车辆场楼"
    "树风云阳台台台湾桥块条齐长张师谢赞赞态欢乐爱严险担忧伤乱厂广医学园县静连续当节约岁买卖错误护维检测验换旧书写读声响麦饭饿锅烟闪烁两万亿周钟钟阴层远转达迟赶紧请帮记录纪系系论认识谈诉"
    "设计划备标准确资讯罢联页显订阅击传证签额余储预银财征税补贴偿赔损坏杆坠触杀灾难绝温凉冲强稳废弃红绿蓝黄无与从将只干产农养鸡鸭猪鱼粮面叶铺饮爷孙妈儿妇龄亲邻陈刘赵杨吴郑马罗韩许邓苏卢"
    "贾谭邹陆顾龙汤乔贺赖众够历历虽总极样种举体专东间闲闹闻阵频顺须领顿愿类飞馆惊松鸟鸣鹤丽党坝坟岭岩峡庙弯径复复庆凭怀战拥挡扰摊败晋晒残壳沟灭满渔洁湿济洒炉争墙独获环画疗尽监盘矿礼祸积"
    "穷笔范筑简纠纸级纳纯练结经综编缘绩绳继罚习圣职脑脚脸兴艺药虫术制袭规觉观托访评询试详诚谁课谅谜议丰猫负货质购赚赢趋迹跃军软较载轻输进运违适选遗游邮释针铃销钢键锁链铁闸板队阶随隐杂离"
    "雾灵项颜饱骗斗伙凶优仪仅债倾雇内册冻减剧劲劳势协厉参双吓叹吨围图团坚尘垫梦夺奋宁审宽导寻属带币库弹恶闷恼惯懒戏抛扫挂采扬摇拨择扩摆携暂晓构枪档柜权归决况涌滚汉浓乌烦牵状奖盗碍称谷窝"
    "竞筹细终绪缓缩织绕义胆临舰庄华盖兰蜡烛卫袜览训诊词谎贝贪宾赠踪轨辅轮辞丑铜铝镜闭顶颈飘饼驱脏鲜盐霉于启钮炖虾卤困撑挤了啰恶呒唤烫烂焖韧桩汇汇衔诈骚窑屉橱馈钥众墙缆迁锯础滤涩滞浑湿浆"
)
TRADITIONAL_TO_SIMPLIFIED: dict[str, str] = dict(zip(_TRADITIONAL, _SIMPLIFIED, strict=True))
"""Each traditional character of the table and its simplified form."""
TO_SIMPLIFIED = str.maketrans(TRADITIONAL_TO_SIMPLIFIED)
"""A ``str.translate`` table: traditional characters to their simplified forms."""


def simplified(text: str) -> str:
    """The text with the table's traditional characters written in their simplified forms."""
    return text.translate(TO_SIMPLIFIED)
